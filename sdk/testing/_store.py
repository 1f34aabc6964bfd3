"""The in-memory twin's store and its two drivers.

The twin's operations (:mod:`._engine`) are generators, like the Redis ones. Most ask their
driver for nothing and return at once; two kinds of request remain, and they are what the
two drivers do differently: :class:`Wait` (block until the store changes: a result is
written) and :class:`Call` (run a job function, for eager mode and ``run_jobs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, ParamSpec, TypeVar

from jobwire import defaults
from jobwire.models import DeadLetter, JobStatus
from jobwire.protocol import Gen, Op, Outcome, drive, drive_async, guarded, guarded_async
from jobwire.wire import JobHeader

__all__ = [
    "CLIENT_KEEP",
    "DEAD_CAP",
    "HISTORY",
    "STATUS",
    "WORKER_NAME",
    "Call",
    "KeptResults",
    "MemoryQueue",
    "MemoryStore",
    "StoredJob",
    "Wait",
    "immediate",
    "run_memory_async",
    "run_memory_sync",
]

P = ParamSpec("P")
T = TypeVar("T")

STATUS: Final = {
    "deferred": JobStatus.DEFERRED,
    "queued": JobStatus.QUEUED,
    "active": JobStatus.IN_PROGRESS,
}
#: As in Redis: at most 10 results per job, 10,000 dead letters per queue.
HISTORY: Final = defaults.HISTORY
DEAD_CAP: Final = defaults.DEAD_LETTER_CAP
#: ``keep`` meaning "the client's keep_result" (None means forever).
CLIENT_KEEP: Final = -1.0
#: The worker name recorded when a twin starts a job itself.
WORKER_NAME: Final = "memory"


# ----------------------------------------------------------------------------- state


@dataclass(slots=True, eq=False)
class StoredJob:
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
    progress: bytes | None = None  # the latest report, as JSON (as in the job hash)


@dataclass(slots=True, eq=False)
class KeptResults:
    entries: list[bytes]  # newest first
    expires_ms: int | None  # None: kept forever


@dataclass(slots=True, eq=False)
class MemoryQueue:
    jobs: dict[str, StoredJob] = field(default_factory=dict)
    results: dict[str, KeptResults] = field(default_factory=dict)
    dead: dict[str, DeadLetter] = field(default_factory=dict)  # oldest first
    # envelopes of jobs that ended other than in success, with their expiry (P:{Q}:failed:ID)
    failed: dict[str, tuple[bytes, int | None]] = field(default_factory=dict)
    enqueued: list[tuple[int, bytes, JobStatus]] = field(default_factory=list)  # (seq, ...)
    # lifecycle events (id, fields) as the stream holds them, and the stats hashes' fields
    events: list[tuple[str, dict[bytes, bytes]]] = field(default_factory=list)
    last_event: tuple[int, int] = (0, 0)
    stats: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)

    def keep_result(self, job_id: str, data: bytes, keep: float | None, now: int) -> None:
        """Keep a job's latest result for ``keep`` seconds (None: forever; 0: not at all)."""
        if keep == 0:
            return
        kept = self.results.get(job_id)
        if kept is None:
            kept = self.results[job_id] = KeptResults([], None)
        kept.entries.insert(0, data)
        del kept.entries[HISTORY:]
        kept.expires_ms = None if keep is None else now + int(keep * 1000)

    def keep_failed(
        self, job_id: str, data: bytes, outcome: str, keep: float | None, now: int
    ) -> None:
        """Keep a failed job's envelope as long as its results (as the finish script)."""
        if keep == 0 or outcome == "success":
            self.failed.pop(job_id, None)
        else:
            self.failed[job_id] = (data, None if keep is None else now + int(keep * 1000))


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
        self._queues: dict[str, MemoryQueue] = {}
        self._known: set[str] = set()
        self._once: dict[str, int] = {}
        self._paused: set[str] = set()
        self._seq = itertools.count(1)

    def clear(self) -> None:
        """Forget every job, result and dead letter."""
        with self._cond:
            self._queues.clear()
            self._known.clear()
            self._once.clear()
            self._paused.clear()
            self._changed()

    # the engine below is the store's only user; these stay private to the package

    def _queue(self, name: str) -> MemoryQueue:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = MemoryQueue()
        return queue

    def _next(self) -> int:
        return next(self._seq)

    def _wake(self) -> None:
        """Wake every waiter: a client closes (its waits end; the others wait on)."""
        with self._cond:
            self._changed()

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
    job_vars = contextvars.copy_context()  # what the job sees (its progress reporter)

    def run() -> None:
        try:
            box.append((True, job_vars.run(asyncio.run, coroutine)))
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


def run_memory_sync(gen: Gen[T], closed: Callable[[], bool] = lambda: False) -> T:
    """Drive a memory operation in blocking code (``closed``: its client was closed)."""
    return drive(gen, guarded(_perform, closed))


async def run_memory_async(gen: Gen[T], closed: Callable[[], bool] = lambda: False) -> T:
    """Drive a memory operation on an event loop (plain job functions run in a thread)."""
    return await drive_async(gen, guarded_async(_perform_async, closed))


def immediate(method: Callable[P, T]) -> Callable[P, Gen[T]]:
    """Make a plain method an operation that asks its driver for nothing."""

    @functools.wraps(method)
    def operation(*args: P.args, **kwargs: P.kwargs) -> Gen[T]:
        yield from ()  # yields nothing, but makes ``operation`` a generator a driver runs
        return method(*args, **kwargs)

    return operation
