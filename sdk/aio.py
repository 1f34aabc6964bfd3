"""The asyncio client, for aiohttp, FastAPI, Starlette: a thin shell over the protocol core.

Same methods and signatures as :class:`jobwire.Client`, as coroutines; every one is a line
that runs the core's generator with :func:`~jobwire.protocol.run_async`. Never blocks the
loop; safe for any number of concurrent tasks on one loop (connections come from a bounded
pool). Create one per application at startup and ``await client.close()`` at shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import redis.asyncio
from typing_extensions import Self, Unpack

from .coalesce import AsyncCoalescer
from .errors import ClientClosed, JobwireError
from .events import Event, Progress, check_since, follow_async
from .keys import check_job_id
from .models import (
    DeadLetter,
    JobHandle,
    JobInfo,
    JobResult,
    JobSpec,
    JobStatus,
    check_limit,
    check_timeout,
    params_of,
)
from .options import ClientOptions, coalescing, make_producer, specs_from
from .packing import Lane
from .producer import JobRef, Producer, now_ms
from .protocol import AsyncRedis, Gen, run_async
from .retrying import close_retries
from .settings import RedisSettings
from .stats import Resolution, Statistics, check_function, check_resolution

__all__ = ["AsyncClient", "AsyncJob"]

T = TypeVar("T")


class AsyncClient:
    """Asyncio jobwire client.

    >>> client = await AsyncClient.connect("redis://localhost:6379/0")  # doctest: +SKIP
    >>> job = await client.enqueue("send_email", user_id=42)  # doctest: +SKIP
    >>> await job.result(timeout=10)  # doctest: +SKIP
    """

    def __init__(
        self,
        redis_client: AsyncRedis | None = None,
        *,
        settings: RedisSettings | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self.settings = settings or RedisSettings()
        self.redis = redis_client if redis_client is not None else self.settings.async_client()
        self._owns_redis = redis_client is None
        self._core: Producer = make_producer(self.settings, options)
        # calls made one at a time skip the pool's checkout (jobwire.packing)
        self._lane = Lane(self.redis) if type(self.redis) is redis.asyncio.Redis else None
        # concurrent enqueues of several tasks share round trips (jobwire.coalesce)
        self._coalescer = AsyncCoalescer(self._run) if coalescing(options) else None

    @classmethod
    def from_url(cls, url: str, **options: Unpack[ClientOptions]) -> Self:
        """A client for the Redis at ``url``; connects lazily, on first use."""
        return cls(settings=RedisSettings.from_url(url), **options)

    @classmethod
    async def connect(cls, url: str, **options: Unpack[ClientOptions]) -> Self:
        """A client for the Redis at ``url``, checked with a PING (raises if unreachable)."""
        client = cls.from_url(url, **options)
        try:
            await client.ping()
        except BaseException:
            await client.close()
            raise
        return client

    _coalescer: AsyncCoalescer | None = None  # (the in-memory twin has none)
    _lane: Lane | None = None
    _closed = False

    def _is_closed(self) -> bool:
        return self._closed

    async def _run(self, gen: Gen[T]) -> T:
        if self._closed:
            raise ClientClosed()
        try:
            return await run_async(self.redis, gen, self._lane, self._is_closed)
        except JobwireError as exc:
            if not self._is_closed():  # (read again: another thread or task may close)
                raise
            # close() cut the call short; a connection it was opening meanwhile goes too
            await self._disconnect()
            if isinstance(exc, ClientClosed):
                raise
            raise ClientClosed() from exc

    def _job(self, ref: JobRef | None) -> AsyncJob | None:
        return None if ref is None else AsyncJob(self, *ref)

    @property
    def queue_name(self) -> str:
        """The default queue of this client."""
        return self._core.queue_name

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called: every call raises ``ClientClosed`` then."""
        return self._closed

    async def close(self) -> None:
        """Close the client: its connection pool (if it created it), its calls in flight.

        The same as :meth:`jobwire.Client.close`: every call made afterwards, and every
        call still waiting in another task, raises :class:`~jobwire.ClientClosed`.
        """
        self._closed = True
        if self._lane is not None:
            await self._lane.close()
        if self._owns_redis:
            close_retries(self.redis)  # before the sockets go: nothing reconnects
        await self._disconnect()

    async def _disconnect(self) -> None:
        if self._owns_redis:
            await self.redis.aclose()
            if isinstance(self.redis, redis.asyncio.Redis):  # a cluster closes its own pools
                await self.redis.connection_pool.disconnect()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncClient({self.settings.safe_url()}, queue={self.queue_name!r})"

    @params_of(JobSpec)
    async def enqueue(self, *args: Any, **kwargs: Any) -> AsyncJob | None:
        """Enqueue ``function(*args, **kwargs)``; None if ``_job_id`` is taken.

        The options are those of :meth:`jobwire.Client.enqueue`. Enqueues of several tasks
        at once share pipelined round trips (unless made with ``coalesce=False``).
        """
        gen, coalescer = self._core.enqueue(JobSpec(*args, **kwargs)), self._coalescer
        run = self._run(gen) if coalescer is None else coalescer.run(gen)
        return self._job(await run)

    async def enqueue_many(
        self, jobs: Sequence[JobSpec | str | Callable[..., Any]]
    ) -> list[AsyncJob | None]:
        """Enqueue many jobs in one round trip; None in place of each job whose id is taken."""
        return [self._job(r) for r in await self._run(self._core.enqueue_many(specs_from(jobs)))]

    def job(self, job_id: str, queue_name: str | None = None) -> AsyncJob:
        """The handle of a job by id (no Redis call; the job may not exist)."""
        return AsyncJob(self, check_job_id(job_id), self._core.keys(queue_name).queue)

    async def queued_jobs(self, queue_name: str | None = None, limit: int = 1000) -> list[JobInfo]:
        """Jobs waiting in a queue: queued ones in order, then deferred ones by start time."""
        return await self._run(self._core.queued_jobs(queue_name, check_limit(limit)))

    async def queue_size(self, queue_name: str | None = None) -> int:
        """How many jobs wait in a queue (queued plus deferred; not the running ones)."""
        return await self._run(self._core.queue_size(queue_name))

    async def all_job_results(self) -> list[JobResult]:
        """The latest kept result of every job in every queue, newest first."""
        return await self._run(self._core.all_job_results())

    async def dead_letters(
        self, queue_name: str | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Messages a worker could not run, with the reason, newest first."""
        return await self._run(self._core.dead_letters(queue_name, check_limit(limit)))

    async def requeue_dead_letter(
        self, entry_id: str, queue_name: str | None = None
    ) -> AsyncJob | None:
        """Enqueue a dead-lettered message again as it was; None if its job id is taken."""
        return self._job(await self._run(self._core.requeue_dead_letter(entry_id, queue_name)))

    async def delete_dead_letter(self, entry_id: str, queue_name: str | None = None) -> bool:
        """Delete a dead-letter entry; False if there was none."""
        return await self._run(self._core.delete_dead_letter(entry_id, queue_name))

    async def queues(self) -> list[str]:
        """Names of the queues jobs have been enqueued to."""
        return await self._run(self._core.listed_queues())

    async def queue_stats(self, queue_name: str | None = None) -> dict[str, int]:
        """Counts of a queue in one round trip: queued, deferred, in_progress, dead_letters."""
        return await self._run(self._core.queue_stats(queue_name))

    async def pause(self, queue_name: str | None = None) -> bool:
        """Pause a queue: workers take no new job from it (within a second); False if it was.

        Running jobs go on; enqueueing, listing and aborting still work.
        """
        return await self._run(self._core.pause(queue_name, now_ms()))

    async def resume(self, queue_name: str | None = None) -> bool:
        """Resume a paused queue (workers take jobs again); False if it was not paused."""
        return await self._run(self._core.resume(queue_name))

    async def is_paused(self, queue_name: str | None = None) -> bool:
        """True while the queue is paused."""
        return await self._run(self._core.is_paused(queue_name))

    async def running_jobs(self, queue_name: str | None = None, limit: int = 1000) -> list[JobInfo]:
        """Jobs of a queue that workers are running now, oldest first."""
        return await self._run(self._core.running_jobs(queue_name, check_limit(limit)))

    async def ping(self) -> bool:
        """True when Redis answers; raises RedisUnavailable when it does not."""
        return await self._run(self._core.ping())

    def events(
        self,
        queue_name: str | None = None,
        *,
        since: str | datetime | timedelta | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[Event]:
        """Follow a queue's lifecycle events: ``async for event in client.events(): ...``.

        The arguments are those of :meth:`jobwire.Client.events`; never blocks the loop.
        """
        queue, start = self._core.keys(queue_name).queue, check_since(since)
        return follow_async(self._run, self._core, queue, start, check_timeout(timeout))

    async def stats(
        self,
        queue_name: str | None = None,
        *,
        since: datetime | timedelta | None = None,
        function: str | None = None,
        resolution: Resolution = "minute",
    ) -> Statistics:
        """Counts and duration histograms per minute or hour (see ``Client.stats``)."""
        check_function(function)
        gen = self._core.stats(queue_name, since, function, check_resolution(resolution))
        return await self._run(gen)


class AsyncJob(JobHandle["AsyncClient"]):
    """Handle of one job, for an :class:`AsyncClient`."""

    __slots__ = ()

    async def status(self) -> JobStatus:
        """deferred, queued, in_progress, complete or not_found."""
        return await self._client._run(self._client._core.status(self.job_id, self.queue_name))

    async def outcome(self) -> str | None:
        """How the job ended: ``success``, ``error``, ``timeout`` or ``aborted``.

        None while it waits or runs (also between tries), or when nothing of it is kept.

        ``status()`` says *where* a job is (a finished job is ``complete`` whatever its
        outcome); this says *how* it ended.
        """
        return await self._client._run(self._client._core.outcome(self.job_id, self.queue_name))

    async def info(self) -> JobInfo | None:
        """The job as stored while it waits or runs; None once it has finished."""
        return await self._client._run(self._client._core.info(self.job_id, self.queue_name))

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the job's final result and return its value (see ``Job.result``)."""
        core, timeout = self._client._core, check_timeout(timeout)
        return await self._client._run(core.result(self.job_id, self.queue_name, timeout))

    async def result_info(self) -> JobResult | None:
        """The latest execution's result (success or not), without waiting."""
        core = self._client._core
        return await self._client._run(core.result_info(self.job_id, self.queue_name))

    async def results(self) -> list[JobResult]:
        """Results of the latest executions (at most 10), newest first."""
        return await self._client._run(self._client._core.results(self.job_id, self.queue_name))

    async def abort(self, timeout: float | None = None) -> bool:
        """Abort the job (see ``Job.abort``); True when it ended aborted."""
        core, timeout = self._client._core, check_timeout(timeout)
        return await self._client._run(core.abort(self.job_id, self.queue_name, timeout))

    async def retry(self) -> AsyncJob | None:
        """Enqueue a failed job again with its arguments (see ``Job.retry``)."""
        core = self._client._core
        return self._client._job(
            await self._client._run(core.retry_job(self.job_id, self.queue_name))
        )

    async def events(self) -> list[Event]:
        """The job's lifecycle events still in the stream, oldest first (``Job.events``)."""
        core = self._client._core
        return await self._client._run(core.job_events(self.job_id, self.queue_name))

    async def progress(self) -> Progress | None:
        """The latest progress the job reported, while it waits or runs; else None."""
        return await self._client._run(self._client._core.progress(self.job_id, self.queue_name))
