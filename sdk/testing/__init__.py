"""In-memory twins of the clients, for unit tests of application code: no Redis needed.

:class:`MemoryClient` is a :class:`jobwire.Client` and :class:`AsyncMemoryClient` an
:class:`jobwire.AsyncClient`: same methods, same signatures, same job handles, same typed
errors, so application code under test cannot tell them apart. Jobs go through the real
wire format (a job with an argument JSON cannot carry fails here as it would in
production). On top of the client interface, both twins have test controls:

* ``enqueued_jobs()`` lists every job enqueued so far, as it was enqueued;
* state setters move a job through its life as a worker would: ``set_in_progress``,
  ``set_complete``, ``set_failed`` (optionally as a retry), ``set_dead_letter``;
  ``abort_requested`` tells whether a client asked to abort a running job;
* ``eager=True`` runs registered functions inline at enqueue and stores their results;
  ``run_jobs()`` runs what is queued on demand, like a burst worker.

>>> client = MemoryClient()
>>> job = client.enqueue("send_email", "ada@example.com")
>>> [j.function for j in client.enqueued_jobs()]
['send_email']
>>> client.set_complete(job.job_id, "sent")
>>> job.result()
'sent'

The setters are plain methods on both twins (they do no I/O); everything else has the
signature of the client it stands in for. Twins built on one :class:`MemoryStore` share
their jobs, like clients of one Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import Self, Unpack

from jobwire.aio import AsyncClient
from jobwire.client import Client
from jobwire.errors import ClientClosed, InvalidArgument
from jobwire.models import JobInfo
from jobwire.options import ClientOptions, core_options
from jobwire.producer import Producer
from jobwire.protocol import Gen
from jobwire.settings import RedisSettings

from ._eager import run_jobs
from ._engine import DEFAULT_MAX_TRIES, MemoryProducer
from ._store import MemoryStore, run_memory_async, run_memory_sync

if TYPE_CHECKING:
    from jobwire.worker import Function

__all__ = ["AsyncMemoryClient", "MemoryClient", "MemoryStore"]

T = TypeVar("T")

_FAILURES = ("error", "timeout", "aborted")


def _functions(functions: Iterable[Callable[..., Any] | Function]) -> dict[str, Function]:
    from jobwire.worker import Function, func

    out: dict[str, Function] = {}
    for item in functions:
        function = item if isinstance(item, Function) else func(item)
        out[function.name] = function
    return out


class _TestControls:
    """What both twins add to the client interface (written once, used by both)."""

    settings: RedisSettings
    _owns_redis: bool
    _core: Producer
    _twin: MemoryProducer

    def __init__(
        self,
        *,
        store: MemoryStore | None = None,
        functions: Iterable[Callable[..., Any] | Function] = (),
        eager: bool = False,
        ctx: Mapping[str, Any] | None = None,
        max_tries: int = DEFAULT_MAX_TRIES,
        **options: Unpack[ClientOptions],
    ) -> None:
        registered = _functions(functions)
        if eager and not registered:
            raise InvalidArgument("eager mode runs registered functions: pass functions=[...]")
        self.settings = RedisSettings()  # not used; there for code that reads it
        self._owns_redis = False
        self._core = self._twin = MemoryProducer(
            store if store is not None else MemoryStore(),
            functions=registered,
            eager=eager,
            ctx=ctx,
            max_tries=max_tries,
            **core_options(None, options),
        )

    @classmethod
    def from_url(cls, url: str, **options: Unpack[ClientOptions]) -> Self:
        """A twin with these options; the URL is ignored (nothing connects anywhere)."""
        return cls(**options)

    @property
    def store(self) -> MemoryStore:
        """The store holding this twin's jobs (pass it to another twin to share them)."""
        return self._twin.store

    @property
    def eager(self) -> bool:
        """True when enqueued jobs run at once, inline."""
        return self._twin.eager

    def enqueued_jobs(self, queue_name: str | None = None) -> list[JobInfo]:
        """Every job accepted so far, oldest first, each as it was when enqueued.

        Of every queue, or of ``queue_name`` alone. Jobs whose id was taken (enqueue
        returned None) are not in it.
        """
        return self._twin.enqueued_jobs(queue_name)

    def set_in_progress(
        self, job_id: str, queue_name: str | None = None, *, worker: str = "memory"
    ) -> None:
        """Start a waiting job, as a worker named ``worker`` taking it does.

        Raises JobNotFound when the job is not waiting or running, InvalidArgument when it
        is running already.
        """
        self._twin.start(job_id, queue_name, worker)

    def set_complete(
        self, job_id: str, result: Any = None, *, queue_name: str | None = None
    ) -> None:
        """End the job successfully with ``result`` as its return value.

        A waiting job is started first. Raises JobNotFound when the job is not waiting or
        running (finished jobs cannot be finished again).
        """
        self._twin.finish(job_id, queue_name, "success", value=result)

    def set_failed(
        self,
        job_id: str,
        error: BaseException,
        *,
        outcome: str = "error",
        retry_in: float | None = None,
        queue_name: str | None = None,
    ) -> None:
        """End the job's current execution with ``error``.

        ``outcome`` is ``"error"``, ``"timeout"`` or ``"aborted"``. With ``retry_in``
        (seconds, 0 for now) the failure is one attempt: the job goes back to its queue for
        its next try, as when a worker retries it; otherwise the failure is final.
        """
        if outcome not in _FAILURES:
            raise InvalidArgument(f"outcome must be one of {_FAILURES}, not {outcome!r}")
        self._twin.finish(job_id, queue_name, outcome, exc=error, retry_in=retry_in)

    def set_dead_letter(
        self, job_id: str, reason: str, message: str = "", *, queue_name: str | None = None
    ) -> str:
        """Move the job to the dead letters, as a worker that cannot run it does.

        A client waiting for its result gets JobFailed naming the reason. Returns the
        dead-letter entry id.
        """
        return self._twin.dead_letter(job_id, queue_name, reason, message)

    def abort_requested(self, job_id: str, queue_name: str | None = None) -> bool:
        """True when a client asked to abort this running job (end it with set_failed)."""
        return self._twin.abort_requested(job_id, queue_name)

    def clear(self) -> None:
        """Forget every job, result and dead letter of the store."""
        self._twin.store.clear()


class MemoryClient(_TestControls, Client):
    """In-memory twin of :class:`jobwire.Client` (see the module documentation).

    ``functions``: job functions (plain, or tasks: ``@jobwire.task``, ``jobwire.worker.func``) that
    ``eager`` mode and ``run_jobs`` run; ``ctx`` is merged into every job's context;
    ``max_tries`` is the default for functions registered without one. Client options
    (``queue_name``, ``serializer``, ``accept``, ``signing_key``, ``max_size``,
    ``keep_result``, ...) mean what they mean for the real client.
    """

    def _run(self, gen: Gen[T]) -> T:
        if self._closed:
            raise ClientClosed()
        return run_memory_sync(gen, self._is_closed)

    def close(self) -> None:
        """Refuse every call from now on, as a closed :class:`jobwire.Client` does."""
        self._closed = True
        self._twin.store._wake()  # a wait in another thread ends

    def __repr__(self) -> str:
        return f"MemoryClient(queue={self.queue_name!r}, eager={self.eager})"

    def run_jobs(self, queue_name: str | None = None, *, include_deferred: bool = False) -> int:
        """Run the queued jobs of every queue (or of ``queue_name``), as a burst worker does.

        Jobs enqueued meanwhile and retries due now run too; ``include_deferred`` runs
        deferred jobs without waiting for their time. Returns how many executions ran.
        ``async def`` functions run on an event loop of their own.
        """
        return self._run(run_jobs(self._twin, queue_name, include_deferred))


class AsyncMemoryClient(_TestControls, AsyncClient):
    """In-memory twin of :class:`jobwire.AsyncClient` (see :class:`MemoryClient`)."""

    @classmethod
    async def connect(cls, url: str, **options: Unpack[ClientOptions]) -> Self:
        """A twin with these options; the URL is ignored (nothing connects anywhere)."""
        return cls(**options)

    async def _run(self, gen: Gen[T]) -> T:
        if self._closed:
            raise ClientClosed()
        # a turn of the loop, as a call to Redis gives: a task enqueuing in a loop on the
        # twin lets the app's other tasks run, as it does on Redis
        await asyncio.sleep(0)
        return await run_memory_async(gen, self._is_closed)

    async def close(self) -> None:
        """Refuse every call from now on, as a closed :class:`jobwire.AsyncClient` does."""
        self._closed = True
        self._twin.store._wake()  # a wait in another task ends

    def __repr__(self) -> str:
        return f"AsyncMemoryClient(queue={self.queue_name!r}, eager={self.eager})"

    async def run_jobs(
        self, queue_name: str | None = None, *, include_deferred: bool = False
    ) -> int:
        """Run the queue's queued jobs (see :meth:`MemoryClient.run_jobs`).

        ``async def`` functions run on this loop, plain ones in a thread.
        """
        return await self._run(run_jobs(self._twin, queue_name, include_deferred))
