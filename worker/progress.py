"""Progress of running jobs: ``ctx["progress"](0.4, "resizing")`` or ``progress(0.4, ...)``.

A job reports how far it is from the event loop, a thread or a process alike. Reports are
coalesced, latest wins, so a chatty job never floods Redis: per job in the thread or child
process that makes them, then across all jobs by :class:`ProgressWriter`, which writes the
latest report of every job in one ``progress`` call per queue, at most every
:data:`INTERVAL` seconds. The value is stored in the job's hash (``job.progress()`` reads
it) and emitted as a ``progress`` event. A process job's reports travel back to the worker
over its child's result pipe, as frames of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from jobwire.errors import RedisError
from jobwire.events import check_progress, progress_json
from jobwire.protocol import Gen

from .state import Running
from .supervisor import RateLimitedLog

__all__ = ["INTERVAL", "ChildProgress", "JobProgress", "ProgressWriter", "current", "progress"]

logger = logging.getLogger("jobwire.worker")
#: Seconds between two progress writes of a worker (per queue, for all its jobs together).
INTERVAL = 0.5
#: Seconds between two progress frames a process job sends to its worker.
CHILD_INTERVAL = 0.1

#: The reporter of the job running in this context (task, thread or child process).
current: contextvars.ContextVar[Callable[[float, str], None] | None] = contextvars.ContextVar(
    "jobwire_progress", default=None
)


def progress(value: float, message: str = "") -> None:
    """Report the progress of the job that calls it: ``value`` from 0.0 to 1.0, a message.

    The same as ``ctx["progress"](value, message)``, for code that has no ``ctx`` at hand;
    it works in ``async def`` jobs and in thread and process jobs alike. Called outside a
    job it checks its arguments and does nothing (so a job function can be unit-tested).
    Raises :class:`~jobwire.InvalidArgument` for a value outside [0, 1].
    """
    value, message = check_progress(value, message)
    reporter = current.get()
    if reporter is not None:
        reporter(value, message)


class JobProgress:
    """The progress callable of one job run by this worker (``ctx["progress"]``).

    Safe to call from any thread: a report from another thread than the loop's is handed
    over with one ``call_soon_threadsafe`` at a time, the latest report winning meanwhile.
    Made for every job that starts, so it holds little: the writer's loop and lock serve
    all of them.
    """

    __slots__ = ("_clock", "_function", "_job", "_latest", "_loop", "_thread", "_try", "_writer")

    def __init__(
        self, writer: ProgressWriter, r: Running, function: str, job_try: int,
        clock: Callable[[], int],
    ) -> None:  # fmt: skip
        self._writer, self._job, self._function, self._try = writer, r, function, job_try
        self._clock = clock
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._latest: tuple[float, str, int] | None = None

    def __call__(self, value: float, message: str = "") -> None:
        """Report ``value`` (0.0 to 1.0) and ``message``; InvalidArgument when wrong."""
        value, message = check_progress(value, message)
        at = self._clock()
        if threading.get_ident() == self._thread:
            self._writer.report(self._job, self._function, self._try, value, message, at)
            return
        with self._writer.lock:
            idle = self._latest is None
            self._latest = (value, message, at)
        if idle:
            with contextlib.suppress(RuntimeError):  # a closed loop: the worker is gone
                self._loop.call_soon_threadsafe(self._hand_over)

    def _hand_over(self) -> None:
        with self._writer.lock:
            latest, self._latest = self._latest, None
        if latest is not None:
            self._writer.report(self._job, self._function, self._try, *latest)


class ProgressWriter:
    """Writes the latest progress of every running job, coalesced (see the module doc)."""

    def __init__(self, run: Callable[[Gen[Any]], Awaitable[Any]], interval: float = INTERVAL):
        self._run = run
        self.interval = interval
        self._pending: dict[Running, tuple[str, int, float, str, int]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._last = -float("inf")
        self.log = RateLimitedLog()
        #: guards the reports that jobs' threads hand over to the loop
        self.lock = threading.Lock()

    def reporter(self, r: Running, function: str, job_try: int, clock: Callable[[], int]) -> Any:
        """The ``ctx["progress"]`` of a job that starts (call it on the loop)."""
        return JobProgress(self, r, function, job_try, clock)

    def report(
        self, r: Running, function: str, job_try: int, value: float, message: str, at: int
    ) -> None:
        """Keep a job's latest report for the next write (on the loop)."""
        if r.settling:
            return  # its outcome is being recorded: the result says the rest
        self._pending[r] = (function, job_try, value, message, at)
        self._schedule()

    def _schedule(self) -> None:
        if self._handle is not None or self._task is not None or not self._pending:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last + self.interval - loop.time())
        self._handle = loop.call_later(delay, self._start)

    def _start(self) -> None:
        self._handle = None
        self._task = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            batch, self._pending = self._pending, {}
            by_queue: dict[Any, list[Any]] = {}
            for r, (function, job_try, value, message, at) in batch.items():
                report = (r.delivery, function, job_try, progress_json(value, message, at))
                by_queue.setdefault(r.queue.consumer, []).append(report)
            for consumer, reports in by_queue.items():
                try:
                    await self._run(consumer.report_progress(reports))
                except RedisError as exc:  # progress is advisory: the next report retries
                    self.log.log(
                        logging.WARNING, "progress", "cannot store progress (%s): %s",
                        type(exc).__name__, exc,
                    )  # fmt: skip
        finally:
            self._last = loop.time()
            self._task = None
            self._schedule()

    def close(self) -> None:
        """Forget pending reports (the worker stops)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._pending.clear()


class ChildProgress:
    """``ctx["progress"]`` in a process-pool child: reports go to the worker as frames.

    At most one frame per :data:`CHILD_INTERVAL`; a report made sooner waits (latest wins)
    for a timer, or for the job's end, when :meth:`close` sends it before the result.
    """

    def __init__(self, send: Callable[[bytes], None], lock: threading.Lock) -> None:
        self._send = send
        self._lock = lock
        self._last = -float("inf")
        self._pending: bytes | None = None
        self._timer: threading.Timer | None = None

    def __call__(self, value: float, message: str = "") -> None:
        """Report ``value`` (0.0 to 1.0) and ``message``; InvalidArgument when wrong."""
        value, message = check_progress(value, message)
        frame = b"P" + orjson.dumps({"value": value, "message": message})
        with self._lock:
            wait = self._last + CHILD_INTERVAL - time.monotonic()
            if wait <= 0:
                self._write(frame)
                return
            self._pending = frame
            if self._timer is None:
                self._timer = threading.Timer(wait, self._flush)
                self._timer.daemon = True
                self._timer.start()

    def _write(self, frame: bytes) -> None:
        self._send(frame)
        self._last = time.monotonic()
        self._pending = None

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            if self._pending is not None:
                self._write(self._pending)

    def close(self) -> None:
        """Send a report still waiting (call with the lock held, before the result)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending is not None:
            self._write(self._pending)


def parse_child_frame(body: bytes) -> tuple[float, str] | None:
    """A progress frame's value and message (None when it makes no sense)."""
    try:
        data = orjson.loads(body)
        return check_progress(data["value"], data.get("message", ""))
    except Exception:
        return None
