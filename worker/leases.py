"""The lease keeper: renews running jobs' leases from a thread, and watches the event loop.

A job that blocks the event loop (``time.sleep`` in an ``async def``) stops everything on
it. If lease renewal ran there too, the leases of every job of the worker would lapse and
other workers would run them a second time. So renewal runs in a thread of its own, with its
own Redis connection, and keeps every running job's lease while the loop is stuck.

The same thread measures the loop's lag: it posts a callback every quarter second and times
how long the loop takes to run it. A loop blocked for longer than ``loop_lag_warning`` is
logged while it is blocked, naming the job running on it, and again when it recovers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence

from jobwire.consumer import ABORT_REQUESTED, LOST
from jobwire.errors import RedisError
from jobwire.protocol import SyncRedis, run_sync
from jobwire.settings import RedisSettings

from .state import QueueState, Running, Slots, Stats
from .supervisor import LoopState, RateLimitedLog

__all__ = ["LeaseKeeper"]

logger = logging.getLogger("jobwire.worker")
_TICK = 0.25


class LeaseKeeper:
    """Renews leases every ``interval`` seconds and watches the loop, in one thread."""

    def __init__(
        self,
        *,
        settings: RedisSettings,
        queues: Sequence[QueueState],
        slots: Slots,
        stats: Stats,
        interval: float,
        lag_warning: float,
        on_abort: Callable[[str], object] | None,
    ) -> None:
        self.settings = settings
        self.queues = queues
        self.slots = slots
        self.stats = stats
        self.interval = interval
        self.lag_warning = lag_warning
        self.on_abort = on_abort
        self.state = LoopState("lease renewal", stall_after=max(3 * interval, 5.0))
        self.max_lag = 0.0  # seconds, since the last health record took it
        self.lag = 0.0  # seconds, the latest measured
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ping_sent: float | None = None
        self._warned = False
        self._log = RateLimitedLog(30.0)

    def start(self) -> None:
        """Start the thread (from the event loop it watches)."""
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        self._thread = threading.Thread(target=self._main, name="jobwire:leases", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the thread and wait for it (without blocking the loop)."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10)

    def take_max_lag(self) -> float:
        """The longest loop lag seen since the last call, in seconds."""
        lag, self.max_lag = self.max_lag, 0.0
        return lag

    # ------------------------------------------------------------- the thread

    def _main(self) -> None:
        conn = self.settings.sync_client()
        self.state.beat()
        next_renewal = time.monotonic() + self.interval
        try:
            while not self._stop.wait(_TICK):
                self._watch_loop()
                if time.monotonic() >= next_renewal:
                    next_renewal = time.monotonic() + self.interval
                    self._renew_all(conn)
        finally:
            conn.close()

    def _renew_all(self, conn: SyncRedis) -> None:
        running = [r for r in self.slots.snapshot() if not r.lost]
        try:
            for q in self.queues:
                mine = [r for r in running if r.queue is q]
                if mine:
                    states = run_sync(conn, q.consumer.renew([r.delivery for r in mine]))
                    for r, state in zip(mine, states, strict=True):
                        self._renewed(r, state)
            self.state.beat()
            self.state.error = None
        except RedisError as exc:
            self.state.failed(exc, "retrying")
            self._log.log(logging.WARNING, "renew", "lease renewal failed (will retry): %s", exc)
        except Exception as exc:  # a bug: loud, and renewal goes on at the next interval
            self.state.failed(exc, "retrying")
            logger.error("lease renewal failed unexpectedly", exc_info=exc)

    def _renewed(self, r: Running, state: int) -> None:
        if state == LOST and not r.settling:
            r.lost = True
            self.stats.leases_lost += 1
            logger.warning(
                "lease of job %r was lost: another worker took it over (this worker could "
                "not renew it in time); it may run twice",
                r.delivery.job_id,
            )
        elif state == ABORT_REQUESTED and self.on_abort is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self.on_abort, r.delivery.job_id)

    def _watch_loop(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if self._ping_sent is None:
            self._ping_sent = time.monotonic()
            try:
                loop.call_soon_threadsafe(self._pong)
            except RuntimeError:  # the loop closed meanwhile
                self._ping_sent = None
            return
        blocked = time.monotonic() - self._ping_sent
        if blocked > self.lag_warning and not self._warned:
            self._warned = True
            logger.warning(
                "the event loop has been blocked for %.1fs by %s: an async job must not call "
                "blocking code (use a def job, which runs in a thread); leases are still "
                "being renewed",
                blocked,
                self._culprit(loop),
            )

    def _culprit(self, loop: asyncio.AbstractEventLoop) -> str:
        task = asyncio.current_task(loop)  # read from another thread: a snapshot, not a lock
        for r in self.slots.snapshot():
            if r.task is task:
                return f"job {r.delivery.job_id!r} ({r.function})"
        running = [f"{r.delivery.job_id!r} ({r.function})" for r in self.slots.snapshot()]
        return "the worker itself" if not running else "one of the jobs " + ", ".join(running)

    def _pong(self) -> None:  # on the loop
        sent, self._ping_sent = self._ping_sent, None
        if sent is None:
            return
        lag = self.lag = time.monotonic() - sent
        self.max_lag = max(self.max_lag, lag)
        if self._warned:
            self._warned = False
            logger.warning("the event loop was blocked for %.1fs", lag)
