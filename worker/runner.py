"""The worker: takes jobs from Redis, runs them, records their results.

It drives the same protocol core as the clients (``jobwire.consumer``) with the async
driver. One asyncio task per queue reads jobs in batches (a non-blocking ``fetch``, then a
blocking ``XREADGROUP`` when the queue is empty); each job runs in its own task, on the loop,
in a thread or in a process. Other tasks renew the leases of running jobs, reclaim jobs whose
lease ran out, listen for abort requests, run cron schedules and write the health record.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import orjson
import redis.asyncio

from jobwire.consumer import (
    ABORT_REQUESTED,
    DEFAULT_DEAD_LETTER_CAP,
    DEFAULT_LEASE,
    LOST,
    Consumer,
)
from jobwire.core import Core, make_core, now_ms
from jobwire.errors import RedisError, RedisUnavailable
from jobwire.models import Delivery, JobSpec
from jobwire.protocol import Gen, run_async
from jobwire.settings import RedisSettings
from jobwire.wire import (
    DEFAULT_ACCEPT,
    DEFAULT_MAX_SIZE,
    DecodeError,
    ErrorRecord,
    Format,
    JobEnvelope,
    JobHeader,
    ResultEnvelope,
)

from .cron import CronJob
from .executors import ProcessJobError, ProcessPool, ThreadRunner
from .functions import (
    DEFAULT_MAX_TRIES,
    Function,
    dead_letter_result,
    encode_result,
    func,
    job_context,
    refusal,
    retry_delay,
)

__all__ = ["Worker"]

logger = logging.getLogger("jobwire.worker")
Hook = Callable[[dict[str, Any]], Awaitable[Any] | Any]
_PROCESS_CTX_KEYS = ("job_id", "job_try", "enqueue_time", "queue_name", "function", "headers")


@dataclass(eq=False)
class _Running:
    """A job this worker is running."""

    delivery: Delivery
    queue: _Queue
    task: asyncio.Task[Any] | None = None
    executing: bool = False
    abort_event: threading.Event = field(default_factory=threading.Event)
    aborted: bool = False
    lost: bool = False


class _GroupCommit:
    """Sends the results that become ready in the same moment in one pipeline.

    The first result starts a flush on the next turn of the loop; results arriving while a
    flush is in flight go in the next one. Under load this turns one round trip per job into
    one per batch; an isolated job still goes out at once.
    """

    def __init__(self, send: Callable[[list[Any]], Awaitable[None]]) -> None:
        self._send = send
        self._items: list[tuple[Any, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, item: Any) -> None:
        """Queue ``item`` for the next flush and wait until it is sent."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._items.append((item, done))
        if self._task is None:
            self._task = asyncio.ensure_future(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._items:
                batch, self._items = self._items, []
                try:
                    await self._send([item for item, _ in batch])
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._task = None


@dataclass(eq=False)
class _Queue:
    name: str
    consumer: Consumer
    next_due: int | None = None
    results: _GroupCommit | None = None
    # set when leases may have expired while every slot was busy: the next free slot
    # goes to a reclaimed job before any new one, so a dead worker's jobs never starve
    reclaim_due: bool = False


@dataclass
class _Stats:
    complete: int = 0
    failed: int = 0
    retried: int = 0
    aborted: int = 0
    dead_lettered: int = 0


class Worker:
    """Runs jobs. Construct it directly or from an arq-style settings class.

    >>> Worker([send_email, func(train, executor="process")], redis_settings=...)  # doctest: +SKIP
    """

    def __init__(
        self,
        functions: Sequence[Function | Callable[..., Any]] = (),
        *,
        queue_name: str = "default",
        queue_names: Sequence[str] | None = None,
        cron_jobs: Sequence[CronJob] = (),
        redis_settings: RedisSettings | str | None = None,
        prefix: str = "jobwire",
        burst: bool = False,
        max_burst_jobs: int = -1,
        max_jobs: int = 10,
        job_timeout: float | timedelta = 300,
        keep_result: float | timedelta = 3600,
        keep_result_forever: bool = False,
        max_tries: int = DEFAULT_MAX_TRIES,
        retry_backoff: float = 1.0,
        allow_abort_jobs: bool = False,
        job_completion_wait: float = 0,
        health_check_interval: float = 60,
        lease: float = DEFAULT_LEASE,
        accept: Iterable[Format] = DEFAULT_ACCEPT,
        signing_key: bytes | str | None = None,
        verify_keys: Iterable[bytes | str] = (),
        max_size: int = DEFAULT_MAX_SIZE,
        thread_workers: int | None = None,
        process_workers: int | None = None,
        on_startup: Hook | None = None,
        on_shutdown: Hook | None = None,
        on_job_start: Hook | None = None,
        on_job_end: Hook | None = None,
        after_job_end: Hook | None = None,
        ctx: dict[str, Any] | None = None,
        handle_signals: bool = True,
        name: str | None = None,
        dead_letter_cap: int = DEFAULT_DEAD_LETTER_CAP,
        timezone: timezone = timezone.utc,
    ) -> None:
        if max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")
        self.functions: dict[str, Function] = {}
        for item in functions:
            function = item if isinstance(item, Function) else func(item)
            self.functions[function.name] = function
        self.cron_jobs = list(cron_jobs)
        for job in self.cron_jobs:
            self.functions.setdefault(job.name, job.function)
        if isinstance(redis_settings, str):
            redis_settings = RedisSettings.from_url(redis_settings)
        self.redis_settings = redis_settings or RedisSettings.from_url(
            os.environ.get("REDIS_URL", "redis://localhost:6379/0")
        )
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.core: Core = make_core(
            self.redis_settings.socket_timeout,
            {
                "prefix": prefix,
                "queue_name": queue_name,
                "accept": accept,
                "signing_key": signing_key,
                "verify_keys": verify_keys,
                "max_size": max_size,
                "keep_result": _seconds(keep_result),
            },
        )
        names = list(queue_names) if queue_names else [queue_name]
        self.queues = [
            _Queue(
                q, Consumer(self.core, self.name, q, lease=lease, dead_letter_cap=dead_letter_cap)
            )
            for q in names
        ]
        self.burst = burst
        self.max_burst_jobs = max_burst_jobs
        self.max_jobs = max_jobs
        self.job_timeout = _seconds(job_timeout)
        self.keep_result = _seconds(keep_result)
        self.keep_result_forever = keep_result_forever
        self.max_tries = max_tries
        self.retry_backoff = retry_backoff
        self.allow_abort_jobs = allow_abort_jobs
        self.job_completion_wait = job_completion_wait
        self.health_check_interval = health_check_interval
        self.lease = lease
        self.hooks = {
            "on_startup": on_startup,
            "on_shutdown": on_shutdown,
            "on_job_start": on_job_start,
            "on_job_end": on_job_end,
            "after_job_end": after_job_end,
        }
        self.ctx: dict[str, Any] = dict(ctx or {})
        self.handle_signals = handle_signals
        self.timezone = timezone
        self.threads = ThreadRunner(thread_workers or min(32, (os.cpu_count() or 1) + 4))
        uses_processes = any(f.executor == "process" for f in self.functions.values())
        self.processes = (
            ProcessPool(process_workers or os.cpu_count() or 1) if uses_processes else None
        )
        self.stats = _Stats()
        self.jobs_started = 0
        self._running: dict[str, _Running] = {}
        # every job task, including an attempt replaced in _running by its own retry while
        # it was still recording the outcome (shutdown waits for those too)
        self._job_tasks: set[asyncio.Task[None]] = set()
        self._capacity = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self._redis: redis.asyncio.Redis | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._signals = 0
        self._fetchers = 0
        self._ended = 0

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> Worker:
        """Build from an arq-style settings class (or object).

        Its attributes are the keyword arguments of ``Worker``; ``overrides`` win.
        """
        params = inspect.signature(cls.__init__).parameters
        options = {
            name: getattr(settings, name)
            for name in params
            if name != "self" and hasattr(settings, name)
        }
        options.update(overrides)
        return cls(**options)

    # ------------------------------------------------------------ life cycle

    def run(self) -> None:
        """Run until stopped (SIGTERM/SIGINT) or, in burst mode, until the queues are empty."""
        asyncio.run(self.main())

    async def main(self) -> None:
        """The worker's whole life, for callers that already run an event loop."""
        await self.startup()
        try:
            await self._stop.wait()
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        """Connect, create the consumer groups, run ``on_startup``, start the tasks."""
        self._stop = asyncio.Event()
        self._capacity = asyncio.Event()
        self._redis = self.redis_settings.async_client()
        for q in self.queues:
            await self._run(q.consumer.ensure_group())
            q.results = _GroupCommit(partial(self._send_results, q))
        await self._run(self.core.register_queues([q.name for q in self.queues]))
        self.ctx.update(redis=self._redis, worker=self.name)
        await self._hook("on_startup", self.ctx)
        if self.processes is not None:
            self.processes.start()  # in the background: loop and thread jobs need not wait
        if self.handle_signals:
            self._install_signals()
        loop_tasks = [self._fetch_loop(q) for q in self.queues]
        loop_tasks += [self._renew_loop(), self._reclaim_loop(), self._health_loop()]
        if self.allow_abort_jobs:  # subscribed before the first job can start
            loop_tasks.append(self._abort_listener(await self._subscribe()))
        if self.cron_jobs:
            loop_tasks.append(self._cron_loop())
        self._fetchers = len(self.queues)
        self._tasks = [asyncio.ensure_future(t) for t in loop_tasks]
        logger.info(
            "worker %s started: queues %s, %d functions, max_jobs=%d, redis %s",
            self.name,
            ", ".join(q.name for q in self.queues),
            len(self.functions),
            self.max_jobs,
            self.redis_settings.safe_url(),
        )

    def stop(self) -> None:
        """Ask the worker to stop gracefully (what SIGTERM does)."""
        self._stopping = True
        self._stop.set()
        self._capacity.set()

    async def shutdown(self) -> None:
        """Stop taking jobs and finish.

        Running jobs get ``job_completion_wait`` seconds; the rest are re-queued. Then
        ``on_shutdown`` runs and the connections close.
        """
        self._stopping = True
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        _, stuck = await asyncio.wait(self._tasks, timeout=10) if self._tasks else ((), ())
        if stuck:
            logger.warning("%d background tasks did not stop in time", len(stuck))
        running = [r.task for r in self._running.values() if r.task is not None]
        if running and self.job_completion_wait > 0:
            await asyncio.wait(running, timeout=self.job_completion_wait)
        leftover = list(self._running.values())
        for r in leftover:
            if r.task is not None:
                r.task.cancel()
        await asyncio.gather(*(r.task for r in leftover if r.task), return_exceptions=True)
        for r in leftover:
            with contextlib.suppress(RedisError):
                await self._run(r.queue.consumer.requeue(r.delivery))
        if leftover:
            logger.info("re-queued %d unfinished jobs", len(leftover))
        if self._job_tasks:  # replaced attempts still recording their outcome
            _, late = await asyncio.wait(set(self._job_tasks), timeout=5)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._hook("on_shutdown", self.ctx)
        if self.processes is not None:
            await self.processes.close()
        if self._redis is not None:
            await self._redis.aclose()
        logger.info(
            "worker %s stopped: %d complete, %d failed, %d retried",
            self.name,
            self.stats.complete,
            self.stats.failed,
            self.stats.retried,
        )

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            self._signals += 1
            if self._signals > 1:  # a second signal: leave now, leases cover the rest
                logger.warning("second %s: exiting at once", signal.Signals(signum).name)
                os._exit(1)
            logger.info("%s: stopping gracefully", signal.Signals(signum).name)
            self.stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, on_signal, signum)

    # ----------------------------------------------------------------- Redis

    async def _run(self, gen: Gen[Any]) -> Any:
        assert self._redis is not None
        return await run_async(self._redis, gen)

    async def _retrying(self, step: Callable[[], Gen[Any]], what: str) -> Any:
        """Run a protocol step (made afresh each try) until Redis answers, with backoff."""
        delay = 0.1
        while True:
            try:
                return await self._run(step())
            except RedisUnavailable as exc:
                logger.warning("Redis unavailable (%s), retrying in %.1fs: %s", what, delay, exc)
                await self._pause(delay)
                delay = min(delay * 2, 5.0)

    # -------------------------------------------------------------- fetching

    def _free(self) -> int:
        return self.max_jobs - len(self._running)

    async def _wait_for(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds; re-checked whenever a job ends or we stop."""
        while not condition():
            self._capacity.clear()
            if condition():
                return
            await self._capacity.wait()

    async def _fetch_loop(self, q: _Queue) -> None:
        delay = 0.1
        while not self._stopping:
            await self._wait_for(lambda: self._free() > 0 or self._stopping)
            if self._stopped():
                return
            if self._burst_done():
                break
            try:
                got = await self._take(q)
                delay = 0.1
            except RedisError as exc:
                logger.warning(
                    "Redis unavailable while fetching from %s, retrying in %.1fs: %s",
                    q.name,
                    delay,
                    exc,
                )
                await self._pause(delay)
                delay = min(delay * 2, 5.0)
                continue
            for d in got:
                self._start(d, q)
            if self.burst and not got:
                if not self._running:
                    _, q.next_due = await self._run(q.consumer.promote())
                    if q.next_due is None:
                        break  # nothing ready, deferred or running: this queue is drained
                    # burst mode still runs deferred jobs (retries included): wait for the next
                    await self._pause(max(0.0, (q.next_due - now_ms()) / 1000))
                    continue
                # a running job may retry: look again when one ends
                await self._wait_for(partial(self._ended_since, self._ended))
        # burst mode: the last queue to finish stops the worker once running jobs are done
        self._fetchers -= 1
        if self._fetchers == 0:
            await self._wait_for(lambda: not self._running)
            self.stop()

    async def _take(self, q: _Queue) -> list[Delivery]:
        got: list[Delivery]
        if q.reclaim_due:
            free = self._free()
            got = await self._reclaimed(q)
            q.reclaim_due = len(got) == free  # a full batch: there may be more
            if got:
                return got
        # one round trip: promotes due deferred jobs, takes ready ones, tells the next due time
        got, q.next_due = await self._run(q.consumer.fetch_and_next_due(self._free()))
        if got or self.burst or self._stopped():  # (a cancel swallowed by redis-py: see _pause)
            return got
        block = self.core.max_block
        timer: asyncio.Task[None] | None = None
        if q.next_due is not None and (q.next_due - now_ms()) / 1000 < block:
            # Redis ends a BLOCK on its own clock tick (100 ms with the default hz 10), too
            # coarse for deferred jobs. A local timer promotes the job at its due time on
            # another connection instead; its XADD wakes the blocked read at once.
            timer = asyncio.ensure_future(self._promote_at(q, q.next_due))
        try:
            got = await self._run(q.consumer.read(self._free(), block))
            assert isinstance(got, list)
        finally:
            if timer is not None:
                timer.cancel()
        return got

    async def _promote_at(self, q: _Queue, due_ms: int) -> None:
        await asyncio.sleep(max(0.0, (due_ms - now_ms()) / 1000))
        with contextlib.suppress(RedisError):
            _, q.next_due = await self._run(q.consumer.promote())

    def _ended_since(self, count: int) -> bool:
        return self._ended != count or self._stopping

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the worker stops.

        Background loops sleep here rather than relying on cancellation alone: a cancel that
        lands while redis-py is connecting can be swallowed by it.
        """
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def _stopped(self) -> bool:
        return self._stopping

    def _burst_done(self) -> bool:
        return self.burst and 0 <= self.max_burst_jobs <= self.jobs_started

    def _start(self, d: Delivery, q: _Queue) -> None:
        current = self._running.get(d.job_id)
        if current is not None and current.delivery.entry_id == d.entry_id:
            # this worker runs it already: its lease lapsed while Redis was out of reach and
            # it took the job back. It owns the lease again; one run is enough.
            current.lost = False
            return
        # (another entry of a running job is its retry, delivered before the previous
        # attempt's task has ended: it runs, and replaces that task here)
        self.jobs_started += 1
        running = _Running(d, q)
        self._running[d.job_id] = running
        running.task = task = asyncio.ensure_future(self._job(running))
        self._job_tasks.add(task)
        task.add_done_callback(self._job_tasks.discard)

    # ------------------------------------------------------------- executing

    async def _job(self, r: _Running) -> None:
        d = r.delivery
        try:
            try:
                job = self.core.codec.decode_job(d.data)
            except DecodeError as exc:
                # unreadable metadata (garbage, too large to parse): the delivery still
                # names the job, so a client waiting for it learns why it will not run
                header = exc.header or JobHeader(
                    id=d.job_id, function="unknown", queue=d.queue_name, enqueued_ms=0
                )
                await self._dead_letter(r, exc.reason, str(exc), header)
                return
            function = self.functions.get(job.function)
            if function is None:
                message = f"no function {job.function!r} is registered"
                await self._dead_letter(r, "unknown_function", message, job)
                return
            await self._execute(r, job, function)
        except asyncio.CancelledError:
            raise  # shutdown: the function was stopped where it ran; the caller re-queues
        except Exception:
            logger.exception(
                "internal error while handling job %s; its lease will expire", d.job_id
            )
        finally:
            if self._running.get(d.job_id) is r:  # not yet replaced by the job's retry
                del self._running[d.job_id]
            self._ended += 1
            self._capacity.set()

    async def _execute(self, r: _Running, job: JobEnvelope, function: Function) -> None:
        d = r.delivery
        job_try = _try_of(job, d)
        max_tries = function.max_tries or self.max_tries
        started = now_ms()
        refused = refusal(job, job_try, max_tries, started)
        if refused is not None:
            await self._finish(r, job, function, started, "error", None, refused, None)
            return
        ctx = job_context(self.ctx, job, job_try, r.abort_event)
        ctx.update(args=job.args, kwargs=job.kwargs)
        await self._hook("on_job_start", ctx)
        timeout = function.timeout if function.timeout is not None else self.job_timeout
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("→ %s %s(%s) try=%d", d.job_id, job.function, _args(job), job_try)
        outcome, value, exc, record = await self._run_function(r, function, ctx, job, timeout)
        retry_defer: float | None = None
        if exc is not None:
            retry_defer, exc = retry_delay(exc, job_try, max_tries, self.retry_backoff)
        ctx.update(
            outcome="retry" if retry_defer is not None else outcome,
            result=value if exc is None else exc,
            success=outcome == "success",
        )
        await self._hook("on_job_end", ctx)
        if exc is not None:
            record = _record(exc)
        if retry_defer is not None:
            await self._retry(r, job, function, started, record, retry_defer)
        else:
            await self._finish(r, job, function, started, outcome, value, record, exc)
        if logger.isEnabledFor(logging.INFO):  # one line per job, formatted only if shown
            logger.info(
                "%s %s(%s) try=%d %s in %.3fs",
                d.job_id,
                job.function,
                _args(job),
                job_try,
                ctx["outcome"],
                (now_ms() - started) / 1000,
            )
        await self._hook("after_job_end", ctx)

    async def _run_function(
        self, r: _Running, function: Function, ctx: dict[str, Any], job: JobEnvelope, timeout: float
    ) -> tuple[str, Any, BaseException | None, ErrorRecord | None]:
        """Run the job's function in this task: (outcome, value, exception, error record).

        A timeout or an abort cancels the function where it runs (loop: the coroutine;
        thread: the wait, abandoning the thread; process: the child, which is killed). A
        cancellation that is neither (worker shutdown) propagates.
        """
        r.executing = True
        try:
            async with _Deadline(timeout) as deadline:
                value = await self._call(function, ctx, job)
            return "success", value, None, None
        except asyncio.CancelledError:
            if not r.aborted:
                raise
            _uncancel()
            return "aborted", None, None, ErrorRecord("jobwire.JobAborted", "aborted while running")
        except BaseException as exc:
            if deadline.expired():
                message = f"job exceeded its timeout of {timeout}s"
                return "timeout", None, None, ErrorRecord("jobwire.JobTimedOut", message)
            if r.aborted:
                return "aborted", None, None, ErrorRecord("jobwire.JobAborted", "aborted")
            if not isinstance(exc, Exception):
                raise
            return "error", None, exc, None
        finally:
            r.executing = False

    async def _call(self, function: Function, ctx: dict[str, Any], job: JobEnvelope) -> Any:
        if function.executor == "loop":
            return await function.coroutine(ctx, *job.args, **job.kwargs)
        if function.executor == "thread":
            fn = function.coroutine
            return await self.threads.run(
                lambda: fn(ctx, *job.args, **job.kwargs), ctx["aborted"], function.name
            )
        assert self.processes is not None
        small = {k: ctx[k] for k in _PROCESS_CTX_KEYS}
        return await self.processes.run(function.coroutine, small, job.args, job.kwargs)

    def _keep(self, function: Function) -> float | None:
        forever = function.keep_result_forever
        if forever or (forever is None and self.keep_result_forever):
            return None
        return function.keep_result if function.keep_result is not None else self.keep_result

    def _result(
        self,
        job: JobHeader,
        function: str,
        started: int,
        outcome: str,
        value: Any,
        error: ErrorRecord | None,
        exc: BaseException | None,
        job_try: int,
    ) -> ResultEnvelope:
        return ResultEnvelope(
            id=job.id,
            function=function,
            queue=job.queue,
            job_try=job_try,
            outcome=outcome,
            value=value,
            error=error,
            exception=exc,
            enqueued_ms=job.enqueued_ms,
            started_ms=started,
            finished_ms=now_ms(),
            worker=self.name,
            format=job.format,
        )

    async def _finish(
        self,
        r: _Running,
        job: JobEnvelope,
        function: Function,
        started: int,
        outcome: str,
        value: Any,
        error: ErrorRecord | None,
        exc: BaseException | None,
    ) -> None:
        job_try = _try_of(job, r.delivery)
        result = self._result(job, function.name, started, outcome, value, error, exc, job_try)
        keep = self._keep(function)
        data, result = encode_result(self.core.codec, result)
        assert r.queue.results is not None
        await r.queue.results.add((r.delivery, data, keep))
        if result.outcome == "success":
            self.stats.complete += 1
        elif result.outcome == "aborted":
            self.stats.aborted += 1
        else:
            self.stats.failed += 1

    async def _send_results(self, q: _Queue, items: list[Any]) -> None:
        await self._retrying(lambda: q.consumer.finish_encoded(items), "store results")

    async def _retry(
        self,
        r: _Running,
        job: JobEnvelope,
        function: Function,
        started: int,
        error: ErrorRecord | None,
        defer: float,
    ) -> None:
        job_try = _try_of(job, r.delivery)
        result = self._result(job, function.name, started, "error", None, error, None, job_try)
        self.stats.retried += 1
        keep = self._keep(function)
        await self._retrying(
            lambda: r.queue.consumer.retry(r.delivery, result, keep, defer), "retry"
        )

    async def _dead_letter(
        self, r: _Running, reason: str, message: str, header: JobHeader | None
    ) -> None:
        self.stats.dead_lettered += 1
        logger.warning("dead-lettering %s: %s (%s)", r.delivery.job_id, reason, message)
        result = (
            None
            if header is None
            else dead_letter_result(header, reason, message, self.name, now_ms())
        )
        await self._retrying(
            lambda: r.queue.consumer.dead_letter(
                reason=reason,
                message=message,
                data=r.delivery.data,
                delivery=r.delivery,
                result=result,
                keep_result=self.keep_result,
            ),
            "dead-letter",
        )

    # ------------------------------------------------------------------- abort

    def abort(self, job_id: str) -> bool:
        """Abort a running job now (as a client's abort request does)."""
        r = self._running.get(job_id)
        if r is None or r.task is None or not r.executing or r.aborted:
            return False  # not running its function (it is starting or recording its result)
        r.aborted = True
        r.abort_event.set()
        r.task.cancel()
        return True

    async def _subscribe(self) -> Any:
        assert self._redis is not None
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(*(q.consumer.keys.events for q in self.queues))
        return pubsub

    async def _abort_listener(self, pubsub: Any) -> None:
        """Abort jobs on the ``abort ID`` notices clients publish (renewal is the fallback)."""
        delay = 0.1
        while not self._stopping:
            try:
                if pubsub is None:
                    pubsub = await self._subscribe()
                    delay = 0.1
                async for message in pubsub.listen():
                    data = message.get("data")
                    if message.get("type") == "message" and isinstance(data, bytes):
                        kind, _, job_id = data.decode().partition(" ")
                        if kind == "abort":
                            self.abort(job_id)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                logger.warning("abort listener lost Redis, retrying in %.1fs: %s", delay, exc)
                await self._pause(delay)
                delay = min(delay * 2, 5.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                    pubsub = None

    # ----------------------------------------------------- leases and upkeep

    async def _every(self, interval: float, step: Callable[[], Awaitable[None]], what: str) -> None:
        while not self._stopping:
            await self._pause(interval)
            try:
                await step()
            except RedisError as exc:
                logger.warning("%s failed (will retry): %s", what, exc)

    async def _renew_loop(self) -> None:
        await self._every(max(0.2, self.lease / 3), self._renew, "lease renewal")

    async def _renew(self) -> None:
        for q in self.queues:
            running = [r for r in self._running.values() if r.queue is q and not r.lost]
            if not running:
                continue
            states = await self._run(q.consumer.renew([r.delivery for r in running]))
            for r, state in zip(running, states, strict=True):
                if state == LOST:
                    r.lost = True
                    logger.warning(
                        "lease of job %s was lost: another worker took it over", r.delivery.job_id
                    )
                elif state == ABORT_REQUESTED and self.allow_abort_jobs:
                    self.abort(r.delivery.job_id)

    async def _reclaim_loop(self) -> None:
        await self._every(max(0.2, self.lease / 2), self._reclaim, "reclaiming expired leases")

    async def _reclaim(self) -> None:
        for q in self.queues:
            if self._stopping:
                return
            if self._free() == 0:
                q.reclaim_due = True  # the fetch loop reclaims first when a slot frees
                continue
            for d in await self._reclaimed(q):
                self._start(d, q)

    async def _reclaimed(self, q: _Queue) -> list[Delivery]:
        """Take over jobs of this queue whose lease ran out, up to the free slots."""
        got: list[Delivery] = await self._run(q.consumer.reclaim(self._free()))
        for d in got:
            logger.warning("job %s reclaimed after its lease expired (try %d)", d.job_id, d.tries)
        return got

    def health(self) -> dict[str, Any]:
        """Counts reported in the health record."""
        return {
            "worker": self.name,
            "time_ms": now_ms(),
            "complete": self.stats.complete,
            "failed": self.stats.failed,
            "retried": self.stats.retried,
            "aborted": self.stats.aborted,
            "dead_lettered": self.stats.dead_lettered,
            "ongoing": len(self._running),
        }

    async def _health_loop(self) -> None:
        interval = self.health_check_interval
        while not self._stopping:
            try:
                for q in self.queues:
                    record = dict(
                        self.health(),
                        queue=q.name,
                        queued=await self._run(self.core.queue_size(q.name)),
                    )
                    await self._run(q.consumer.write_health(orjson.dumps(record), interval + 1))
            except RedisError as exc:
                logger.warning("health check write failed: %s", exc)
            await self._pause(interval)

    # -------------------------------------------------------------------- cron

    async def _cron_loop(self) -> None:
        q = self.queues[0]
        now = datetime.now(self.timezone)
        for job in self.cron_jobs:
            if job.run_at_startup:
                await self._enqueue_cron(job, q, None)
        upcoming = {job.name: job.next_run(now) for job in self.cron_jobs}
        while not self._stopping:
            name = min(upcoming, key=lambda n: upcoming[n])
            when = upcoming[name]
            await self._pause(max(0.0, (when - datetime.now(self.timezone)).total_seconds()))
            job = next(j for j in self.cron_jobs if j.name == name)
            try:
                await self._enqueue_cron(job, q, when)
            except RedisError as exc:
                logger.warning("cron %s at %s not enqueued: %s", name, when, exc)
            upcoming[name] = job.next_run(when)

    async def _enqueue_cron(self, job: CronJob, q: _Queue, when: datetime | None) -> None:
        stamp = "startup-" + self.name if when is None else str(int(when.timestamp()))
        job_id = job.job_id or f"cron:{job.name}:{stamp}"
        spec = JobSpec(job.name, _job_id=job_id, _queue_name=q.name)
        once = (f"cron:{job.name}:{stamp}", 24 * 3600 * 1000) if job.unique and when else None
        await self._run(self.core.enqueue(spec, once))

    # ------------------------------------------------------------------- hooks

    async def _hook(self, name: str, ctx: dict[str, Any]) -> None:
        hook = self.hooks.get(name)
        if hook is None:
            return
        try:
            result = hook(ctx)
            if inspect.isawaitable(result):
                await result
        except Exception:
            if name == "on_startup":
                raise
            logger.exception("%s hook failed", name)


class _Deadline:
    """``asyncio.timeout`` for Python 3.10 too (cancels the current task when it expires)."""

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._handle: asyncio.TimerHandle | None = None
        self._expired = False

    def expired(self) -> bool:
        return self._expired

    def _fire(self, task: asyncio.Task[Any]) -> None:
        self._expired = True
        task.cancel()

    async def __aenter__(self) -> _Deadline:
        if self._seconds is not None:
            task = asyncio.current_task()
            assert task is not None
            self._handle = asyncio.get_running_loop().call_later(self._seconds, self._fire, task)
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._handle is not None:
            self._handle.cancel()
        if self._expired and exc_type is asyncio.CancelledError:
            _uncancel()
            raise TimeoutError
        return False


def _try_of(job: JobEnvelope, delivery: Delivery) -> int:
    """The try number of this execution: the envelope's first try plus earlier starts."""
    return job.job_try + delivery.tries - 1


def _uncancel() -> None:
    """Forget one cancel request of the current task (3.11+; earlier versions keep none)."""
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _record(exc: BaseException) -> ErrorRecord:
    if isinstance(exc, ProcessJobError):
        return exc.record
    # an exception from a process job carries the record made in the child, traceback included
    record = getattr(exc, "jobwire_record", None)
    return record if isinstance(record, ErrorRecord) else ErrorRecord.from_exception(exc)


def _args(job: JobEnvelope, limit: int = 80) -> str:
    text = ", ".join([*map(repr, job.args), *(f"{k}={v!r}" for k, v in job.kwargs.items())])
    return text if len(text) <= limit else text[: limit - 1] + "…"
