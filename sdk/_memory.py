"""The in-memory twin's engine: a store, a protocol core over it, and its two drivers.

:class:`MemoryCore` subclasses the Redis :class:`~jobwire.core.Core` and overrides every
operation, so the client shells (``Client``, ``AsyncClient``, ``Job``, ``AsyncJob``) run
unchanged on top of it: only their driver differs. Jobs are checked and encoded exactly as
for Redis (same options, same codec, same errors) and kept as bytes, so what a test reads
back went through the same wire format as in production.

The operations are generators, like the Redis ones. Most ask their driver for nothing and
return at once; two kinds of request remain, and they are what the two drivers do
differently: :class:`Wait` (block until the store changes: a result is written) and
:class:`Call` (run a job function, for eager mode and ``run_jobs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, ParamSpec, TypeVar

from jobwire.wire import DecodeError, ErrorRecord, JobHeader, ResultEnvelope
from jobwire.worker.attempt import (
    Defaults,
    Poison,
    Refused,
    Unknown,
    conclude,
    dead_letter_result,
    encode_result,
    job_context,
    plan,
    try_number,
)
from jobwire.worker.functions import DEFAULT_MAX_TRIES

from .core import Core, JobRef, Prepared, now_ms
from .errors import InvalidArgument, JobNotFound, JobTimeout, ResultNotFound
from .keys import check_name
from .models import DeadLetter, JobInfo, JobResult, JobSpec, JobStatus
from .protocol import Gen, Op, Outcome, drive, drive_async

__all__ = [
    "DEFAULT_MAX_TRIES",
    "Call",
    "MemoryCore",
    "MemoryStore",
    "Wait",
    "run_memory_async",
    "run_memory_sync",
]

P = ParamSpec("P")
T = TypeVar("T")

_STATUS: Final = {
    "deferred": JobStatus.DEFERRED,
    "queued": JobStatus.QUEUED,
    "active": JobStatus.IN_PROGRESS,
}
#: As in Redis: at most 10 results per job, 10,000 dead letters per queue.
_HISTORY: Final = 10
_DEAD_CAP: Final = 10_000
#: ``keep`` meaning "the client's keep_result" (None means forever).
_CLIENT_KEEP: Final = -1.0
#: The worker name recorded when a twin starts a job itself.
_WORKER: Final = "memory"


# ----------------------------------------------------------------------------- state


@dataclass(slots=True, eq=False)
class _Job:
    data: bytes
    header: JobHeader
    state: str  # deferred | queued | active
    due_ms: int | None
    expires_ms: int | None
    order: int  # position among the queued jobs of its queue
    tries: int = 0  # starts so far, as the Redis job hash counts them
    worker: str | None = None
    started_ms: int | None = None
    abort: bool = False


@dataclass(slots=True, eq=False)
class _Results:
    entries: list[bytes]  # newest first
    expires_ms: int | None  # None: kept forever


@dataclass(slots=True, eq=False)
class _Queue:
    jobs: dict[str, _Job] = field(default_factory=dict)
    results: dict[str, _Results] = field(default_factory=dict)
    dead: dict[str, DeadLetter] = field(default_factory=dict)  # oldest first
    enqueued: list[tuple[bytes, JobStatus]] = field(default_factory=list)


class MemoryStore:
    """Everything the in-memory twins hold: jobs, results and dead letters of every queue.

    Twins built on one store see the same jobs, as clients of one Redis do. Thread-safe:
    one lock guards the state, and writers wake the waiters of both kinds (threads and
    event loops) after every change.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._version = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._queues: dict[str, _Queue] = {}
        self._known: set[str] = set()
        self._once: dict[str, int] = {}
        self._seq = itertools.count(1)

    def clear(self) -> None:
        """Forget every job, result and dead letter."""
        with self._cond:
            self._queues.clear()
            self._known.clear()
            self._once.clear()
            self._changed()

    # the engine below is the store's only user; these stay private to the package

    def _queue(self, name: str) -> _Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue()
        return queue

    def _next(self) -> int:
        return next(self._seq)

    def _changed(self) -> None:
        """Wake every waiter (call with the lock held)."""
        self._version += 1
        self._cond.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            # a closed loop raises RuntimeError: nobody waits there any more
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, future)

    def _wait(self, version: int, timeout: float | None) -> None:
        with self._cond:
            if self._version == version:
                self._cond.wait(timeout)

    async def _wait_async(self, version: int, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._version != version:
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            with self._cond:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# ------------------------------------------------------------------ ops and drivers


@dataclass(frozen=True, slots=True)
class Wait(Op):
    """Block until ``store`` changes after ``version`` (or ``timeout`` seconds pass)."""

    store: MemoryStore
    version: int
    timeout: float | None


@dataclass(frozen=True, slots=True)
class Call(Op):
    """Run a job function with these arguments; the reply is its return value."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


def _call_in_new_loop(op: Call) -> Any:
    """Run an ``async def`` job to completion from blocking code.

    It runs in a thread of its own when the calling thread already runs a loop, which must
    not be re-entered.
    """
    coroutine = op.function(*op.args, **op.kwargs)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: list[Any] = []

    def run() -> None:
        try:
            box.append((True, asyncio.run(coroutine)))
        except BaseException as exc:
            box.append((False, exc))

    thread = threading.Thread(target=run, name="jobwire-memory-job")
    thread.start()
    thread.join()
    ok, value = box[0]
    if not ok:
        raise value
    return value


def _perform(op: Op) -> Outcome:
    if isinstance(op, Wait):
        op.store._wait(op.version, op.timeout)
        return True, None
    call = _as_call(op)
    try:
        if inspect.iscoroutinefunction(call.function):
            return True, _call_in_new_loop(call)
        return True, call.function(*call.args, **call.kwargs)
    except Exception as exc:  # the job's own failure, for the operation to record
        return False, exc


async def _perform_async(op: Op) -> Outcome:
    if isinstance(op, Wait):
        await op.store._wait_async(op.version, op.timeout)
        return True, None
    call = _as_call(op)
    try:
        if inspect.iscoroutinefunction(call.function):
            return True, await call.function(*call.args, **call.kwargs)
        return True, await asyncio.to_thread(call.function, *call.args, **call.kwargs)
    except Exception as exc:
        return False, exc


def _as_call(op: Op) -> Call:
    if not isinstance(op, Call):
        raise TypeError(f"{op!r} is not an in-memory operation")
    return op


def run_memory_sync(gen: Gen[T]) -> T:
    """Drive a memory operation in blocking code."""
    return drive(gen, _perform)


async def run_memory_async(gen: Gen[T]) -> T:
    """Drive a memory operation on an event loop (plain job functions run in a thread)."""
    return await drive_async(gen, _perform_async)


def _immediate(method: Callable[P, T]) -> Callable[P, Gen[T]]:
    """Make a plain method an operation that asks its driver for nothing."""

    @functools.wraps(method)
    def operation(*args: P.args, **kwargs: P.kwargs) -> Gen[T]:
        yield from ()  # yields nothing, but makes ``operation`` a generator a driver runs
        return method(*args, **kwargs)

    return operation


# ---------------------------------------------------------------------------- core


class MemoryCore(Core):
    """Every client operation, on a :class:`MemoryStore` instead of Redis.

    The worker-side transitions (start, finish, retry, dead-letter) are plain methods, used
    by the twins' state setters and by eager execution of registered functions.
    """

    def __init__(
        self,
        store: MemoryStore,
        *,
        functions: Mapping[str, Any] | None = None,  # name -> jobwire.worker.Function
        eager: bool = False,
        ctx: Mapping[str, Any] | None = None,
        max_tries: int = DEFAULT_MAX_TRIES,
        **core_options: Any,
    ) -> None:
        super().__init__(**core_options)
        self.store = store
        self.functions = dict(functions or {})
        self.eager = eager
        self.ctx = dict(ctx or {})
        self.max_tries = max_tries

    # ---------------------------------------------------------------- helpers

    def _q(self, queue_name: str | None, now: int | None = None) -> tuple[str, _Queue]:
        """A queue's name and state, brought up to date (call with the lock held)."""
        name = self.keys(queue_name).queue
        queue = self.store._queue(name)
        now = now_ms() if now is None else now
        for job_id, job in list(queue.jobs.items()):
            if job.state != "active" and job.expires_ms is not None and job.expires_ms <= now:
                del queue.jobs[job_id]  # as the job hash expires in Redis
        due = sorted(
            (job.due_ms or 0, job_id)
            for job_id, job in queue.jobs.items()
            if job.state == "deferred" and (job.due_ms or 0) <= now
        )
        for _, job_id in due:  # what a worker's promotion does within milliseconds
            job = queue.jobs[job_id]
            job.state, job.due_ms, job.order = "queued", None, self.store._next()
        for job_id, kept in list(queue.results.items()):
            if kept.expires_ms is not None and kept.expires_ms <= now:
                del queue.results[job_id]
        return name, queue

    def _job(self, queue_name: str | None, job_id: str) -> tuple[str, _Queue, _Job]:
        name, queue = self._q(queue_name)
        job = queue.jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"job {job_id!r} is not queued or running in queue {name!r}")
        return name, queue, job

    def _waiting(self, queue_name: str | None) -> tuple[list[_Job], list[_Job]]:
        """A queue's queued jobs in order and its deferred ones by start time (locked)."""
        jobs = self._q(queue_name)[1].jobs.values()
        queued = sorted((j for j in jobs if j.state == "queued"), key=lambda j: j.order)
        deferred = sorted(
            (j for j in jobs if j.state == "deferred"), key=lambda j: (j.due_ms or 0, j.header.id)
        )
        return queued, deferred

    def _store_result(
        self, queue: _Queue, job_id: str, data: bytes, keep: float | None, now: int
    ) -> None:
        if keep == 0:
            return
        kept = queue.results.get(job_id)
        if kept is None:
            kept = queue.results[job_id] = _Results([], None)
        kept.entries.insert(0, data)
        del kept.entries[_HISTORY:]
        kept.expires_ms = None if keep is None else now + int(keep * 1000)

    def _result(
        self,
        job: _Job,
        outcome: str,
        *,
        value: Any = None,
        error: ErrorRecord | None = None,
        exc: BaseException | None = None,
        now: int,
    ) -> ResultEnvelope:
        header = job.header
        return ResultEnvelope.of(
            header,
            job_try=try_number(header.job_try, job.tries),
            outcome=outcome,
            started_ms=job.started_ms or now,
            finished_ms=now,
            worker=job.worker or "",
            value=value,
            error=error,
            exception=exc,
        )

    def _add(self, job: Prepared, now: int, once: tuple[str, int] | None = None) -> bool:
        """Store one prepared job unless its id is taken (the enqueue script's rule)."""
        name, queue = self._q(job.keys.queue, now)
        if job.job_id in queue.jobs:
            return False
        if self.unique_while_result_kept and job.job_id in queue.results:
            return False
        if once is not None:
            marker = f"{name}\0{once[0]}"
            if self.store._once.get(marker, 0) > now:
                return False
            self.store._once[marker] = now + once[1]
        header = self.codec.read_job_header(job.data)
        state = "deferred" if job.due_ms is not None else "queued"
        queue.jobs[job.job_id] = _Job(
            job.data, header, state, job.due_ms, job.expires_ms, self.store._next()
        )
        queue.enqueued.append((job.data, _STATUS[state]))
        self.store._known.add(name)
        self.store._changed()
        return True

    # ---------------------------------------------------------------- enqueue

    def enqueue(self, spec: JobSpec, once: tuple[str, int] | None = None) -> Gen[JobRef | None]:
        """Enqueue one job (eager mode: and run it)."""
        now = now_ms()
        job = self.prepare(spec, now)
        with self.store._cond:
            added = self._add(job, now, once)
        if not added:
            return None
        if self.eager:
            yield from self.run_job(job.job_id, job.keys.queue)
        return (job.job_id, job.keys.queue)

    def enqueue_many(self, specs: Iterable[JobSpec]) -> Gen[list[JobRef | None]]:
        """Enqueue many jobs (eager mode: and run them, in order)."""
        now = now_ms()
        jobs = [self.prepare(spec, now) for spec in specs]  # all checked before any is kept
        with self.store._cond:
            added = [self._add(job, now) for job in jobs]
        refs: list[JobRef | None] = []
        for job, ok in zip(jobs, added, strict=True):
            if ok and self.eager:
                yield from self.run_job(job.job_id, job.keys.queue)
            refs.append((job.job_id, job.keys.queue) if ok else None)
        return refs

    # -------------------------------------------------------------- job state

    @_immediate
    def status(self, job_id: str, queue_name: str) -> JobStatus:
        """Where the job is in its life."""
        with self.store._cond:
            _, queue = self._q(queue_name)
            job = queue.jobs.get(job_id)
            if job is not None:
                return _STATUS[job.state]
            return JobStatus.COMPLETE if job_id in queue.results else JobStatus.NOT_FOUND

    @_immediate
    def info(self, job_id: str, queue_name: str) -> JobInfo | None:
        """The job as stored while deferred, queued or running; None otherwise."""
        with self.store._cond:
            job = self._q(queue_name)[1].jobs.get(job_id)
            if job is None:
                return None
            state, tries, worker, started = job.state, job.tries, job.worker, job.started_ms
        header = self._decode_job(job.data)
        return JobInfo.from_stored(
            header, _STATUS[state], tries=tries, worker=worker, started_ms=started
        )

    def _kept(self, job_id: str, queue_name: str | None) -> list[bytes]:
        with self.store._cond:
            kept = self._q(queue_name)[1].results.get(job_id)
            return list(kept.entries) if kept else []

    @_immediate
    def result_info(self, job_id: str, queue_name: str) -> JobResult | None:
        """The latest execution's result, if kept."""
        kept = self._kept(job_id, queue_name)
        return self._decode_result(kept[0]) if kept else None

    @_immediate
    def results(self, job_id: str, queue_name: str) -> list[JobResult]:
        """Results of the latest executions (up to 10), newest first."""
        return [self._decode_result(data) for data in self._kept(job_id, queue_name)]

    def wait_final(self, job_id: str, queue_name: str, timeout: float | None) -> Gen[JobResult]:
        """Block until the job has a final result: woken by the write, never polling."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.store._cond:
                queue = self._q(queue_name)[1]
                job = queue.jobs.get(job_id)
                if job is None:
                    kept = queue.results.get(job_id)
                    if kept is None:
                        raise ResultNotFound(
                            f"job {job_id!r} is not queued or running and no result of it is kept",
                            job_id=job_id,
                        )
                    latest = kept.entries[0]
                    break
                version = self.store._version
                # nothing wakes a waiter when a waiting job expires: wake up for it
                until_expiry = (
                    None
                    if job.state == "active" or job.expires_ms is None
                    else max(0.0, (job.expires_ms - now_ms()) / 1000)
                )
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise JobTimeout(f"no result for job {job_id!r} within {timeout}s", job_id=job_id)
            limits = [t for t in (remaining, until_expiry) if t is not None]
            yield Wait(self.store, version, min(limits) if limits else None)
        return self._decode_result(latest)

    def abort(self, job_id: str, queue_name: str, timeout: float | None) -> Gen[bool]:
        """Abort: a waiting job is removed; a running one is flagged and waited for."""
        now = now_ms()
        with self.store._cond:
            name, queue = self._q(queue_name, now)
            job = queue.jobs.get(job_id)
            if job is None:
                return False
            if job.state == "active":
                job.abort = True
                self.store._changed()
                running = True
            else:
                running = False
                del queue.jobs[job_id]
                result = self.codec.encode_result(self._aborted_result(job_id, name, job.data))
                self._store_result(queue, job_id, result, self.keep_result_ms / 1000, now)
                self.store._changed()
        if not running:
            return True
        final = yield from self.wait_final(job_id, queue_name, timeout)
        return final.outcome == "aborted"

    # ---------------------------------------------------------------- listings

    @_immediate
    def queued_jobs(self, queue_name: str | None, limit: int) -> list[JobInfo]:
        """Queued jobs in order, then deferred ones by start time (``limit`` of each)."""
        with self.store._cond:
            queued, deferred = self._waiting(queue_name)
            rows = [(j.data, _STATUS[j.state]) for j in (*queued[:limit], *deferred[:limit])]
        return [JobInfo.from_stored(self._decode_job(data), status) for data, status in rows]

    def _counts(self, queue_name: str | None) -> dict[str, int]:
        with self.store._cond:
            queue = self._q(queue_name)[1]
            states = [job.state for job in queue.jobs.values()]
            return {
                "queued": states.count("queued"),
                "deferred": states.count("deferred"),
                "in_progress": states.count("active"),
                "dead_letters": len(queue.dead),
            }

    @_immediate
    def queue_size(self, queue_name: str | None) -> int:
        """Number of jobs waiting in a queue (queued and deferred; not running)."""
        counts = self._counts(queue_name)
        return counts["queued"] + counts["deferred"]

    @_immediate
    def queue_stats(self, queue_name: str | None) -> dict[str, int]:
        """Counts of a queue: queued, deferred, in_progress and dead_letters."""
        return self._counts(queue_name)

    @_immediate
    def all_job_results(self) -> list[JobResult]:
        """The latest result of every job in every queue, newest first."""
        with self.store._cond:
            latest = [
                kept.entries[0]
                for name in list(self.store._queues)
                for kept in self._q(name)[1].results.values()
            ]
        out: list[JobResult] = []
        for data in latest:
            try:
                out.append(self._decode_result(data))
            except DecodeError:
                continue  # as with Redis: a result this client cannot read is left out
        out.sort(key=lambda r: r.finish_time, reverse=True)
        return out

    @_immediate
    def known_queues(self) -> list[str]:
        """Names of the queues that have been enqueued to."""
        with self.store._cond:
            return sorted(self.store._known)

    @_immediate
    def register_queues(self, names: Sequence[str]) -> None:
        """Record queue names for listings."""
        with self.store._cond:
            self.store._known.update(check_name("queue name", n) for n in names)

    @_immediate
    def health_records(self, queue_name: str | None) -> dict[str, bytes]:
        """No worker runs against a twin: there are no health records."""
        return {}

    @_immediate
    def ping(self) -> bool:
        """A twin always answers."""
        return True

    # ------------------------------------------------------------- dead letters

    @_immediate
    def dead_letters(self, queue_name: str | None, limit: int) -> list[DeadLetter]:
        """Dead-letter entries of a queue, newest first."""
        with self.store._cond:
            return list(reversed(self._q(queue_name)[1].dead.values()))[:limit]

    @_immediate
    def requeue_dead_letter(self, entry_id: str, queue_name: str | None) -> JobRef | None:
        """Enqueue a dead-lettered message again, unchanged."""
        now = now_ms()
        with self.store._cond:
            name, queue = self._q(queue_name, now)
            letter = queue.dead.get(entry_id)
            if letter is None:
                raise JobNotFound(f"no dead-letter entry {entry_id!r} in queue {name!r}")
            job_id = self.codec.read_job_header(letter.data).id
            prepared = Prepared(job_id, self.keys(name), letter.data, None, None)
            if not self._add(prepared, now):
                return None
            del queue.dead[entry_id]
            return (job_id, name)

    @_immediate
    def delete_dead_letter(self, entry_id: str, queue_name: str | None) -> bool:
        """Delete one dead-letter entry; False if it did not exist."""
        with self.store._cond:
            removed = self._q(queue_name)[1].dead.pop(entry_id, None)
            if removed is not None:
                self.store._changed()
            return removed is not None

    # ------------------------------------------------- worker side (state setters)

    def start(self, job_id: str, queue_name: str | None, worker: str) -> None:
        """Move a waiting job to in progress, as a worker taking it does."""
        now = now_ms()
        with self.store._cond:
            _, _, job = self._job(queue_name, job_id)
            if job.state == "active":
                raise InvalidArgument(f"job {job_id!r} is already in progress")
            job.state, job.due_ms = "active", None
            job.tries += 1
            job.worker, job.started_ms, job.abort = worker, now, False
            self.store._changed()

    def finish(
        self,
        job_id: str,
        queue_name: str | None,
        outcome: str,
        *,
        value: Any = None,
        exc: BaseException | None = None,
        error: ErrorRecord | None = None,
        retry_in: float | None = None,
        keep: float | None = _CLIENT_KEEP,
        worker: str = _WORKER,
    ) -> bool:
        """End the current execution of a job (starting it first if it was waiting).

        With ``retry_in`` (seconds) the job goes back to its queue for another try, due
        then; otherwise its result is final. ``keep``: seconds to keep the result (None:
        forever; the default: the client's ``keep_result``). Returns True when the job was
        re-queued.
        """
        if keep == _CLIENT_KEEP:
            keep = self.keep_result_ms / 1000
        with self.store._cond:
            _, queue, job = self._job(queue_name, job_id)
            if job.state != "active":
                self.start(job_id, queue_name, worker)
            now = now_ms()
            if exc is not None and error is None:
                error = ErrorRecord.from_exception(exc)
            result = self._result(job, outcome, value=value, error=error, exc=exc, now=now)
            self._store_result(queue, job_id, encode_result(self.codec, result)[0], keep, now)
            job.worker = job.started_ms = None
            if retry_in is None:
                del queue.jobs[job_id]
            elif retry_in > 0:
                job.state, job.due_ms = "deferred", now + int(retry_in * 1000)
            else:
                job.state, job.order = "queued", self.store._next()
            self.store._changed()
            return retry_in is not None

    def dead_letter(self, job_id: str, queue_name: str | None, reason: str, message: str) -> str:
        """Move a job to the dead letters with a reason, as a worker that cannot run it does.

        A waiting client gets a failed result naming the reason. Returns the entry id.
        """
        now = now_ms()
        with self.store._cond:
            name, queue, job = self._job(queue_name, job_id)
            del queue.jobs[job_id]
            entry_id = f"{now}-{self.store._next()}"
            queue.dead[entry_id] = DeadLetter(
                entry_id=entry_id,
                queue_name=name,
                job_id=job_id,
                reason=reason,
                message=message,
                data=job.data,
                time=datetime.fromtimestamp(now / 1000, tz=timezone.utc),
            )
            while len(queue.dead) > _DEAD_CAP:
                del queue.dead[next(iter(queue.dead))]
            result = dead_letter_result(job.header, reason, message, job.worker or _WORKER, now)
            self._store_result(
                queue, job_id, self.codec.encode_result(result), self.keep_result_ms / 1000, now
            )
            self.store._changed()
            return entry_id

    def abort_requested(self, job_id: str, queue_name: str | None) -> bool:
        """True when a client asked to abort this running job."""
        with self.store._cond:
            job = self._q(queue_name)[1].jobs.get(job_id)
            return bool(job is not None and job.abort)

    def enqueued_jobs(self, queue_name: str | None) -> list[JobInfo]:
        """Every job accepted by the queue so far, in order, as it was when enqueued."""
        with self.store._cond:
            rows = list(self._q(queue_name)[1].enqueued)
        return [JobInfo.from_stored(self._decode_job(data), status) for data, status in rows]

    def raw(self, job_id: str, queue_name: str | None) -> tuple[bytes, int]:
        """A waiting or running job's stored bytes and its start count."""
        with self.store._cond:
            _, _, job = self._job(queue_name, job_id)
            return job.data, job.tries

    # ------------------------------------------------------------ eager execution

    def run_jobs(self, queue_name: str | None, include_deferred: bool) -> Gen[int]:
        """Run the queue's ready jobs (and deferred ones, if asked) until none is left."""
        ran = 0
        while True:
            with self.store._cond:
                waiting, deferred = self._waiting(queue_name)
                if include_deferred and not waiting:
                    waiting = deferred
                if not waiting:
                    return ran
                job_id = waiting[0].header.id
            yield from self._execute(job_id, queue_name)
            ran += 1

    def run_job(self, job_id: str, queue_name: str | None) -> Gen[None]:
        """Run one job now, again and again while it asks for retries (ignores deferral)."""
        while True:
            with self.store._cond:
                job = self._q(queue_name)[1].jobs.get(job_id)
                if job is None or job.state == "active":
                    return
            yield from self._execute(job_id, queue_name)

    def _execute(self, job_id: str, queue_name: str | None) -> Gen[None]:
        """One execution, with the worker's rules (function lookup, tries, expiry, Retry)."""
        self.start(job_id, queue_name, _WORKER)
        data, tries = self.raw(job_id, queue_name)
        # no backoff here: a Retry without a delay runs again at once
        defaults = Defaults(max_tries=self.max_tries, keep_result=_CLIENT_KEEP, retry_backoff=0.0)
        decision = plan(self.codec, data, job_id, tries, self.functions, defaults, now_ms())
        if isinstance(decision, (Poison, Unknown)):
            # (no other worker here to hand an unknown function's job to)
            reason = decision.reason if isinstance(decision, Poison) else "unknown_function"
            self.dead_letter(job_id, queue_name, reason, decision.message)
            return
        if isinstance(decision, Refused):
            self.finish(job_id, queue_name, "error", error=decision.error)
            return
        run = decision
        ctx = job_context(self.ctx, run, threading.Event())
        try:
            value = yield Call(run.function.coroutine, (ctx, *run.job.args), run.job.kwargs)
        except Exception as exc:
            final = conclude(run, "error", exc=exc, backoff=0.0)
            self.finish(
                job_id, queue_name, "error", error=final.error, exc=final.exception,
                retry_in=final.retry_in, keep=run.keep,
            )  # fmt: skip
        else:
            self.finish(job_id, queue_name, "success", value=value, keep=run.keep)
