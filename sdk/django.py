"""Django: enqueue a job when the database transaction commits, not before.

A view that saves a row and enqueues a job about it must not let a worker start the job
before the row is committed (the worker would not find it), nor send the job at all when
the transaction rolls back. :func:`enqueue_on_commit` checks and encodes the job at once,
hands the enqueue to Django's ``transaction.on_commit`` and returns the job's handle, whose
id is known before the commit::

    from django.db import transaction
    from jobwire.django import enqueue_on_commit

    with transaction.atomic():
        order = Order.objects.create(email=email)
        job = enqueue_on_commit("send_receipt", order.pk, _client=client)
    # committed: the job is in Redis now

Outside a transaction (autocommit) the job is sent at once, as ``on_commit`` runs its
callback at once. This module imports Django; ``import jobwire`` does not import it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

# Django ships no type hints (django-stubs is not required): ``settings`` and
# ``transaction`` are Any to mypy, used only in the two functions below.
from django.conf import settings
from django.db import transaction

from . import defaults
from .client import Client, Job
from .errors import InvalidArgument
from .keys import new_job_id
from .models import JobSpec, function_name
from .producer import now_ms

__all__ = ["SETTING", "enqueue_on_commit", "get_client"]

logger = logging.getLogger("jobwire.django")

#: The Django setting :func:`get_client` connects to (else ``$REDIS_URL``, else localhost).
SETTING = "JOBWIRE_REDIS_URL"

_clients: dict[str, Client] = {}
_clients_lock = threading.Lock()


def get_client() -> Client:
    """The process's default client: for the Redis at ``settings.JOBWIRE_REDIS_URL``.

    Without that setting it is ``$REDIS_URL``, else ``redis://localhost:6379/0`` (where a
    worker connects too). Made on first use and shared by every thread (a ``Client`` is
    thread-safe); one per URL, so ``override_settings`` in tests gets its own. A client
    someone closed is replaced by a new one on the next call.
    """
    url = getattr(settings, SETTING, None) or defaults.redis_url()
    if not isinstance(url, str):
        raise InvalidArgument(f"settings.{SETTING} must be a Redis URL, not {url!r:.40}")
    with _clients_lock:
        client = _clients.get(url)
        if client is None or client.closed:
            client = _clients[url] = Client.from_url(url)
    return client


def enqueue_on_commit(
    function: str | Callable[..., Any],
    /,
    *args: Any,
    _client: Client | None = None,
    _using: str | None = None,
    _robust: bool = False,
    **kwargs: Any,
) -> Job:
    """Enqueue ``function(*args, **kwargs)`` when the current transaction commits.

    Takes the arguments and ``_`` options of :meth:`jobwire.Client.enqueue` (``_job_id``,
    ``_queue_name``, ``_defer_by``, ...) and three of its own: ``_client``, the blocking
    client to send with (default :func:`get_client`); ``_using``, the database alias whose
    transaction counts (default ``"default"``); ``_robust``, as in ``on_commit``.

    The job is checked and encoded now, so bad options or arguments raise here
    (:class:`~jobwire.InvalidArgument`, :class:`~jobwire.UnsupportedValue`) and the
    transaction can still roll back. Its id is chosen now too (a random one unless
    ``_job_id`` is given): the returned handle's ``job_id`` can be stored with the row.
    Until the commit the job's status is ``not_found``, and stays so if the transaction
    (or the savepoint around this call) rolls back: nothing is sent then. A ``_defer_by``
    or ``_expires`` duration counts from the commit. Outside a transaction the job is sent
    at once. If ``_job_id`` is taken at commit time nothing is sent (as ``enqueue`` returns
    None) and the handle is that existing job.

    When sending fails at commit time (Redis unavailable), the error is logged at ERROR
    with its traceback on the ``jobwire.django`` logger, naming the job, and then raised
    from where the transaction commits (the end of the outermost ``atomic`` block), as any
    ``on_commit`` callback's error is; the data is committed by then and later callbacks
    of that commit do not run. With ``_robust=True`` it is only logged.
    """
    client = get_client() if _client is None else _client
    if not isinstance(client, Client):
        raise InvalidArgument(
            "enqueue_on_commit sends with a blocking jobwire.Client (on_commit callbacks "
            f"are not awaited), not {type(client).__qualname__}"
        )
    given_id = kwargs.pop("_job_id", None)
    spec = JobSpec(
        function, *args, _job_id=new_job_id() if given_id is None else given_id, **kwargs
    )
    # check and encode now, so that a bad job fails inside the transaction, not after it
    prepared = client._core.prepare(spec, now_ms())
    job = client.job(prepared.job_id, spec.options.queue_name)
    name = function_name(function)

    def send() -> None:
        try:
            (sent,) = client.enqueue_many([spec])
        except Exception:
            logger.error(
                "could not enqueue job %s (%s) on commit of database %r",
                job.job_id,
                name,
                _using or "default",
                exc_info=True,
            )
            if not _robust:
                raise
            return
        if sent is None:
            logger.info("job %s (%s) not enqueued on commit: its id is taken", job.job_id, name)

    transaction.on_commit(send, using=_using)
    return job
