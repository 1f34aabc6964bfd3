"""The blocking client, for Django, Flask, scripts: a thin shell over the protocol core.

Every method is one line: it asks :class:`~jobwire.producer.Producer` for the operation's generator
and runs it with :func:`~jobwire.protocol.run_sync`. No event loop is involved. One
``Client`` is meant to be shared by all the threads of a process: its connection pool is
thread-safe and bounded (``RedisSettings.max_connections``).
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import redis
from typing_extensions import Self, Unpack

from .coalesce import Coalescer
from .errors import ClientClosed, JobwireError
from .events import Event, Progress, check_since, follow
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
from .packing import SyncLane
from .producer import JobRef, Producer, now_ms
from .protocol import Gen, SyncRedis, run_sync
from .retrying import close_retries
from .settings import RedisSettings
from .stats import Resolution, Statistics, check_function, check_resolution

__all__ = ["Client", "Job"]

T = TypeVar("T")


class Client:
    """Blocking jobwire client.

    >>> client = Client.from_url("redis://localhost:6379/0")  # doctest: +SKIP
    >>> job = client.enqueue("send_email", user_id=42)  # doctest: +SKIP
    >>> job.result(timeout=10)  # doctest: +SKIP
    """

    def __init__(
        self,
        redis_client: SyncRedis | None = None,
        *,
        settings: RedisSettings | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self.settings = settings or RedisSettings()
        self.redis = redis_client if redis_client is not None else self.settings.sync_client()
        self._owns_redis = redis_client is None
        self._core: Producer = make_producer(self.settings, options)
        # calls made one at a time skip the pool's checkout (jobwire.packing)
        self._lane = SyncLane(self.redis) if type(self.redis) is redis.Redis else None
        # concurrent enqueues of several threads share round trips (jobwire.coalesce)
        self._coalescer = Coalescer(self._run) if coalescing(options) else None

    @classmethod
    def from_url(cls, url: str, **options: Unpack[ClientOptions]) -> Self:
        """A client for the Redis at ``url``.

        Schemes: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis+sentinel://``,
        ``redis+cluster://``.
        """
        return cls(settings=RedisSettings.from_url(url), **options)

    _warned_loop = False
    _coalescer: Coalescer | None = None  # (the in-memory twin has none)
    _lane: SyncLane | None = None
    _closed = False

    def _is_closed(self) -> bool:
        return self._closed

    def _run(self, gen: Gen[T]) -> T:
        if self._closed:
            raise ClientClosed()
        if not self._warned_loop and asyncio.events._get_running_loop() is not None:
            self._warn_blocking()
        try:
            return run_sync(self.redis, gen, self._lane, self._is_closed)
        except JobwireError as exc:
            if not self._is_closed():  # (read again: another thread or task may close)
                raise
            # close() cut the call short; a connection it was opening meanwhile goes too
            self._disconnect()
            if isinstance(exc, ClientClosed):
                raise
            raise ClientClosed() from exc

    def _warn_blocking(self) -> None:
        # once per client: a hint, not a flood; the call goes ahead (it may be deliberate)
        self._warned_loop = True
        warnings.warn(
            "jobwire.Client was called on the thread of a running event loop: each call "
            "blocks that loop until Redis answers. In async code use jobwire.AsyncClient "
            "(or run the call in a thread: await asyncio.to_thread(...))",
            RuntimeWarning,
            stacklevel=_outside_jobwire(),
        )

    def _job(self, ref: JobRef | None) -> Job | None:
        return None if ref is None else Job(self, *ref)

    @property
    def queue_name(self) -> str:
        """The default queue of this client."""
        return self._core.queue_name

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called: every call raises ``ClientClosed`` then."""
        return self._closed

    def close(self) -> None:
        """Close the client: its connection pool (if it created it), its calls in flight.

        Every call made afterwards raises :class:`~jobwire.ClientClosed`, and so does a
        call another thread is still waiting on (a ``job.result()``): it ends now.
        """
        self._closed = True
        if self._lane is not None:
            self._lane.close()
        if self._owns_redis:
            close_retries(self.redis)  # before the sockets go: nothing reconnects
        self._disconnect()

    def _disconnect(self) -> None:
        if self._owns_redis:
            self.redis.close()
            if isinstance(self.redis, redis.Redis):  # a cluster client closes its nodes' pools
                self.redis.connection_pool.disconnect()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.settings.safe_url()}, queue={self.queue_name!r})"

    @params_of(JobSpec)
    def enqueue(self, *args: Any, **kwargs: Any) -> Job | None:
        """Enqueue ``function(*args, **kwargs)``; None if ``_job_id`` is taken.

        Options (all optional): ``_job_id``, ``_queue_name``, ``_defer_until`` (datetime),
        ``_defer_by`` (seconds or timedelta), ``_expires`` (duration or datetime after which
        the job must not start), ``_job_try``, ``_serializer`` (``json``/``msgpack``/
        ``pickle``), ``_headers`` (string map passed to the job). ``client.job(job_id)``
        returns the handle of an existing job. Enqueues of several threads at once share
        pipelined round trips (unless the client was made with ``coalesce=False``).
        """
        gen, coalescer = self._core.enqueue(JobSpec(*args, **kwargs)), self._coalescer
        return self._job(self._run(gen) if coalescer is None else coalescer.run(gen))

    def enqueue_many(self, jobs: Sequence[JobSpec | str | Callable[..., Any]]) -> list[Job | None]:
        """Enqueue many jobs in one round trip; None in place of each job whose id is taken."""
        return [self._job(r) for r in self._run(self._core.enqueue_many(specs_from(jobs)))]

    def job(self, job_id: str, queue_name: str | None = None) -> Job:
        """The handle of a job by id (no Redis call; the job may not exist)."""
        return Job(self, check_job_id(job_id), self._core.keys(queue_name).queue)

    def queued_jobs(self, queue_name: str | None = None, limit: int = 1000) -> list[JobInfo]:
        """Jobs waiting in a queue: queued ones in order, then deferred ones by start time."""
        return self._run(self._core.queued_jobs(queue_name, check_limit(limit)))

    def queue_size(self, queue_name: str | None = None) -> int:
        """How many jobs wait in a queue (queued plus deferred; not the running ones)."""
        return self._run(self._core.queue_size(queue_name))

    def all_job_results(self) -> list[JobResult]:
        """The latest kept result of every job in every queue, newest first."""
        return self._run(self._core.all_job_results())

    def dead_letters(self, queue_name: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Messages a worker could not run, with the reason, newest first."""
        return self._run(self._core.dead_letters(queue_name, check_limit(limit)))

    def requeue_dead_letter(self, entry_id: str, queue_name: str | None = None) -> Job | None:
        """Enqueue a dead-lettered message again as it was; None if its job id is taken."""
        return self._job(self._run(self._core.requeue_dead_letter(entry_id, queue_name)))

    def delete_dead_letter(self, entry_id: str, queue_name: str | None = None) -> bool:
        """Delete a dead-letter entry; False if there was none."""
        return self._run(self._core.delete_dead_letter(entry_id, queue_name))

    def queues(self) -> list[str]:
        """Names of the queues jobs have been enqueued to."""
        return self._run(self._core.listed_queues())

    def queue_stats(self, queue_name: str | None = None) -> dict[str, int]:
        """Counts of a queue in one round trip: queued, deferred, in_progress, dead_letters."""
        return self._run(self._core.queue_stats(queue_name))

    def pause(self, queue_name: str | None = None) -> bool:
        """Pause a queue: workers take no new job from it (within a second); False if it was.

        Running jobs go on; enqueueing, listing and aborting still work.
        """
        return self._run(self._core.pause(queue_name, now_ms()))

    def resume(self, queue_name: str | None = None) -> bool:
        """Resume a paused queue (workers take jobs again); False if it was not paused."""
        return self._run(self._core.resume(queue_name))

    def is_paused(self, queue_name: str | None = None) -> bool:
        """True while the queue is paused."""
        return self._run(self._core.is_paused(queue_name))

    def running_jobs(self, queue_name: str | None = None, limit: int = 1000) -> list[JobInfo]:
        """Jobs of a queue that workers are running now, oldest first."""
        return self._run(self._core.running_jobs(queue_name, check_limit(limit)))

    def ping(self) -> bool:
        """True when Redis answers; raises RedisUnavailable when it does not."""
        return self._run(self._core.ping())

    def events(
        self,
        queue_name: str | None = None,
        *,
        since: str | datetime | timedelta | None = None,
        timeout: float | None = None,
    ) -> Iterator[Event]:
        """Follow the lifecycle events of a queue's jobs as they happen, oldest first.

        ``since``: None for the events after the iteration starts, an event's ``id`` to
        resume after it, a ``datetime`` or a ``timedelta`` (that long ago) to replay what
        the stream still holds from then, ``"0"`` for all of it. Blocks on Redis (no
        polling); the iteration ends once ``timeout`` seconds pass without a new event
        (None: it follows until you stop it). Malformed entries are skipped.
        """
        queue, start = self._core.keys(queue_name).queue, check_since(since)
        return follow(self._run, self._core, queue, start, check_timeout(timeout))

    def stats(
        self,
        queue_name: str | None = None,
        *,
        since: datetime | timedelta | None = None,
        function: str | None = None,
        resolution: Resolution = "minute",
    ) -> Statistics:
        """Counts by outcome and duration histograms of a queue, per minute or hour.

        From ``since`` (a time, or a ``timedelta`` ago; None: the last hour at minute
        resolution, the last day at hour resolution) to now, for one ``function`` or all.
        Minutes are kept 24 hours, hours 30 days.
        """
        check_function(function)
        gen = self._core.stats(queue_name, since, function, check_resolution(resolution))
        return self._run(gen)


def _outside_jobwire() -> int:
    """The ``stacklevel`` of a warning that points at the caller's line, past jobwire's."""
    frame, level = sys._getframe(1), 1  # the function that warns
    while frame.f_back is not None and _in_jobwire(frame.f_globals.get("__name__", "")):
        frame, level = frame.f_back, level + 1
    return level


def _in_jobwire(module: str) -> bool:
    return module == "jobwire" or module.startswith("jobwire.")


class Job(JobHandle["Client"]):
    """Handle of one job, for a blocking :class:`Client`."""

    __slots__ = ()

    def status(self) -> JobStatus:
        """deferred, queued, in_progress, complete or not_found."""
        return self._client._run(self._client._core.status(self.job_id, self.queue_name))

    def outcome(self) -> str | None:
        """How the job ended: ``success``, ``error``, ``timeout`` or ``aborted``.

        None while it waits or runs (also between tries), or when nothing of it is kept.

        ``status()`` says *where* a job is (a finished job is ``complete`` whatever its
        outcome); this says *how* it ended.
        """
        return self._client._run(self._client._core.outcome(self.job_id, self.queue_name))

    def info(self) -> JobInfo | None:
        """The job as stored while it waits or runs; None once it has finished."""
        return self._client._run(self._client._core.info(self.job_id, self.queue_name))

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job's final result and return its value.

        Raises JobFailed (or the job's own exception, for pickle jobs read with pickle
        accepted), JobAborted, WaitTimeout after ``timeout`` seconds, or ResultNotFound when
        the job is gone without a kept result.
        """
        timeout = check_timeout(timeout)
        return self._client._run(self._client._core.result(self.job_id, self.queue_name, timeout))

    def result_info(self) -> JobResult | None:
        """The latest execution's result (success or not), without waiting."""
        return self._client._run(self._client._core.result_info(self.job_id, self.queue_name))

    def results(self) -> list[JobResult]:
        """Results of the latest executions (at most 10), newest first."""
        return self._client._run(self._client._core.results(self.job_id, self.queue_name))

    def abort(self, timeout: float | None = None) -> bool:
        """Abort the job; True when it ended aborted.

        A waiting job is removed at once; a running one is asked to stop and waited for up
        to ``timeout`` seconds (WaitTimeout after that).
        """
        timeout = check_timeout(timeout)
        return self._client._run(self._client._core.abort(self.job_id, self.queue_name, timeout))

    def retry(self) -> Job | None:
        """Enqueue a job that failed (error, timeout, aborted) again, with its arguments.

        The envelope its last run had is enqueued unchanged under the same id while its
        result is kept. Returns the job's handle, or None when a job with this id exists
        again; raises JobNotFound when there is no failed run to retry (it succeeded, has
        not ended, or its result expired).
        """
        return self._client._job(
            self._client._run(self._client._core.retry_job(self.job_id, self.queue_name))
        )

    def events(self) -> list[Event]:
        """The job's lifecycle events still in its queue's stream, oldest first.

        For an id used again, the events of its latest enqueue.
        """
        return self._client._run(self._client._core.job_events(self.job_id, self.queue_name))

    def progress(self) -> Progress | None:
        """The latest progress the job reported, while it waits or runs; else None."""
        return self._client._run(self._client._core.progress(self.job_id, self.queue_name))
