"""One job checked and encoded, ready to send: the rule every enqueue starts with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

from jobwire.wire import Codec, Format, JobEnvelope

from .errors import InvalidArgument
from .keys import QueueKeys, check_job_id, new_job_id
from .models import JobSpec, function_name, seconds

__all__ = ["Prepared", "prepare_job"]


class Prepared(NamedTuple):
    """A checked and encoded job, not yet sent (``due_ms`` is None unless in the future)."""

    job_id: str
    keys: QueueKeys
    data: bytes
    due_ms: int | None
    expires_ms: int | None
    function: str = ""  # for the job's enqueued event
    job_try: int = 1
    #: the id was made for this call (no other call can name it): the call needs no token
    fresh_id: bool = False


def prepare_job(
    spec: JobSpec,
    now: int,
    keys: QueueKeys,
    serializer: Format,
    codec: Codec,
    trace: Mapping[str, str] | None = None,
    route: Callable[[str], QueueKeys] | None = None,
) -> Prepared:
    """Check a job's ``_`` options and encode it for ``keys``' queue.

    ``serializer`` is the client's default format; ``trace`` the trace-context headers of
    the enqueue's span (the job's own headers win); ``route`` gives the keys of the
    partition that holds a job id, for a sharded queue (the envelope names the queue
    itself). Bad options are InvalidArgument.
    """
    opts = spec.options
    if opts.defer_until is not None and opts.defer_by is not None:
        raise InvalidArgument("use _defer_until or _defer_by, not both")
    job_id = new_job_id() if opts.job_id is None else check_job_id(opts.job_id)
    due: int | None = None
    if opts.defer_until is not None:
        due = _epoch_ms(opts.defer_until, "_defer_until")
    elif opts.defer_by is not None:
        due = now + int(seconds(opts.defer_by, "_defer_by") * 1000)
    expires = _expiry(opts.expires, due or now, now)
    if expires is not None and due is not None and due >= expires:
        raise InvalidArgument("the job would expire before its deferred start")
    job_try = 1 if opts.job_try is None else opts.job_try
    if type(job_try) is not int or job_try < 1:
        raise InvalidArgument("_job_try must be an integer >= 1")
    envelope = JobEnvelope(
        id=job_id,
        function=function_name(spec.function),
        queue=keys.queue,
        enqueued_ms=now,
        job_try=job_try,
        defer_until_ms=due,
        expires_ms=expires,
        format=serializer if opts.serializer is None else opts.serializer,
        headers=_headers(opts.headers) if trace is None else {**trace, **_headers(opts.headers)},
        args=spec.args,
        kwargs=spec.kwargs,
    )
    data = codec.encode_job(envelope)
    due = due if due and due > now else None
    if route is not None:
        keys = route(job_id)
    return Prepared(
        job_id, keys, data, due, expires, envelope.function, job_try, opts.job_id is None
    )


def _epoch_ms(value: object, what: str = "a time") -> int:
    if not isinstance(value, datetime):
        raise InvalidArgument(f"{what} must be a datetime, not {value!r:.40}")
    return int(value.timestamp() * 1000)


def _headers(headers: object) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise InvalidArgument(f"_headers must be a mapping, not {type(headers).__qualname__}")
    return dict(headers)


def _expiry(value: float | timedelta | datetime | None, start: int, now: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        at = _epoch_ms(value)
    else:
        at = start + int(seconds(value, "_expires") * 1000)
    if at <= now:
        raise InvalidArgument("_expires is in the past")
    return at
