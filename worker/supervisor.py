"""Supervised background loops and rate-limited warnings.

Every loop of a worker (fetching each queue, reclaiming, health, abort notices, cron) runs
under :class:`Supervisor`: an exception that escapes a loop is logged with its traceback and
the loop starts again after a backoff, never silently ending it. Each loop reports progress
through its :class:`LoopState`; the health record carries those states, and a loop that has
failed, or made no progress for longer than it promised, makes ``--check`` fail.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from jobwire.errors import RedisAuthError, RedisCommandError, RedisOutOfMemory, RedisUnavailable

__all__ = ["LoopState", "RateLimitedLog", "Supervisor"]

logger = logging.getLogger("jobwire.worker")


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(eq=False)
class LoopState:
    """What one background loop is doing, as the health record reports it.

    ``stall_after`` is the longest the loop may go without progress while it is not waiting
    for something legitimate (a free slot, the next cron time); past it the loop counts as
    wedged.
    """

    name: str
    stall_after: float
    state: str = "starting"
    last_progress_ms: int = 0
    restarts: int = 0
    error: str | None = None

    def beat(self) -> None:
        """The loop made progress."""
        self.state = "running"
        self.last_progress_ms = _now_ms()

    def waiting(self) -> None:
        """The loop waits for something that is not its own work (progress by definition)."""
        self.state = "waiting"
        self.last_progress_ms = _now_ms()

    def failed(self, exc: BaseException, state: str) -> None:
        """The loop hit ``exc`` and is now ``state`` (restarting, retrying)."""
        self.state = state
        self.error = f"{type(exc).__name__}: {exc}"[:500]

    def record(self) -> dict[str, Any]:
        """The state as the health record carries it."""
        return {
            "state": self.state,
            "last_progress_ms": self.last_progress_ms,
            "stall_after_ms": int(self.stall_after * 1000),
            "restarts": self.restarts,
            "error": self.error,
        }


class RateLimitedLog:
    """Logs the first of a kind of message at once, then at most one per ``window`` seconds.

    Suppressed repeats are counted and reported with the next line of their kind, so a flood
    of bad messages is visible without filling the log.
    """

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._messages: dict[str, tuple[int, str]] = {}

    def log(self, level: int, kind: str, message: str, *args: Any) -> None:
        """Log ``message % args`` unless a line of ``kind`` was logged within the window."""
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.window:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            self._messages[kind] = (level, message % args if args else message)
            return
        self._last[kind] = now
        more = self._suppressed.pop(kind, 0)
        if more:
            message += " (and %d more like it in the last %.0fs)"
            args = (*args, more, self.window)
        logger.log(level, message, *args)
        if len(self._last) > 1000:  # kinds carry no unbounded data, but stay bounded anyway
            self._last.clear()

    def flush(self) -> None:
        """Report the repeats still counted whose window has passed (a flood that ended)."""
        now = time.monotonic()
        for kind, count in list(self._suppressed.items()):
            if now - self._last.get(kind, 0.0) >= self.window:
                level, last_message = self._messages.pop(kind, (logging.WARNING, kind))
                del self._suppressed[kind]
                self._last[kind] = now
                logger.log(
                    level, "%d more like this in the last %.0fs, the latest: %s",
                    count, self.window, last_message,
                )  # fmt: skip


class Supervisor:
    """Runs loops as tasks, restarting any that fails, with a backoff."""

    def __init__(self, stopping: Callable[[], bool], pause: Callable[[float], Awaitable[None]]):
        self._stopping = stopping
        self._pause = pause
        self.loops: dict[str, LoopState] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self._log = RateLimitedLog(30.0)

    def start(
        self, name: str, body: Callable[[LoopState], Awaitable[None]], stall_after: float
    ) -> LoopState:
        """Run ``body(state)`` under supervision; it returns when its work is done."""
        state = LoopState(name, stall_after)
        self.loops[name] = state
        self.tasks.append(asyncio.ensure_future(self._supervise(state, body)))
        return state

    async def _supervise(
        self, state: LoopState, body: Callable[[LoopState], Awaitable[None]]
    ) -> None:
        delay = 0.1
        while not self._stopping():
            started = time.monotonic()
            try:
                state.beat()
                await body(state)
                state.state = "done"
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state.restarts += 1
                state.failed(exc, "restarting")
                if time.monotonic() - started > 60:
                    delay = 0.1  # it ran well for a while: start the backoff afresh
                self._report(state, exc, delay)
                await self._pause(delay)
                delay = min(delay * 2, 30.0)
        state.state = "stopped"

    def _report(self, state: LoopState, exc: Exception, delay: float) -> None:
        if isinstance(exc, RedisUnavailable):
            # expected while Redis restarts: one line, no traceback
            self._log.log(
                logging.WARNING, f"{state.name}:down",
                "%s: Redis unavailable, retrying in %.1fs: %s", state.name, delay, exc,
            )  # fmt: skip
        elif isinstance(exc, RedisOutOfMemory):
            self._log.log(
                logging.ERROR, f"{state.name}:oom",
                "%s: Redis is out of memory (maxmemory reached, policy noeviction) and refuses "
                "writes; retrying in %.1fs. Free memory or raise maxmemory: %s",
                state.name, delay, exc,
            )  # fmt: skip
        elif isinstance(exc, RedisAuthError):
            self._log.log(
                logging.ERROR, f"{state.name}:auth",
                "%s: Redis refused the credentials (check the user and password), retrying in "
                "%.1fs: %s", state.name, delay, exc,
            )  # fmt: skip
        elif isinstance(exc, RedisCommandError):
            self._log.log(
                logging.ERROR, f"{state.name}:cmd", "%s failed, restarting in %.1fs: %s",
                state.name, delay, exc,
            )  # fmt: skip
        else:
            logger.error(
                "%s failed unexpectedly, restarting in %.1fs", state.name, delay, exc_info=exc
            )

    def records(self) -> dict[str, dict[str, Any]]:
        """Every loop's state, for the health record."""
        return {name: state.record() for name, state in self.loops.items()}
