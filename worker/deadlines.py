"""Job timeouts: a job's task is cancelled when its time is up, counted from its real start.

One event-loop timer serves every job whose deadline falls in the same 10 ms: a timer per
job, set as it starts and cancelled as it ends (nearly always long before it would fire),
was a few percent of a short job's cost. A timeout fires at most that much late.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

__all__ = ["TICK", "Deadline", "Deadlines", "uncancel"]

#: Seconds of deadlines one timer serves (a timeout fires up to this much late).
TICK = 0.01


class Deadlines:
    """The deadlines of one worker's running jobs (used on its event loop only)."""

    def __init__(self) -> None:
        self._ticks: dict[int, tuple[asyncio.TimerHandle, set[Deadline]]] = {}

    def deadline(self, seconds: float | None) -> Deadline:
        """A job's deadline, ``seconds`` after it is armed (None: none)."""
        return Deadline(self, seconds)

    def pending(self) -> int:
        """Timers set now (one per 10 ms holding a deadline)."""
        return len(self._ticks)

    def _add(self, deadline: Deadline, seconds: float) -> int:
        loop = asyncio.get_running_loop()
        tick = math.ceil((loop.time() + seconds) / TICK)
        entry = self._ticks.get(tick)
        if entry is None:
            entry = self._ticks[tick] = (loop.call_at(tick * TICK, self._fire, tick), set())
        entry[1].add(deadline)
        return tick

    def _remove(self, deadline: Deadline, tick: int) -> None:
        entry = self._ticks.get(tick)
        if entry is not None:
            entry[1].discard(deadline)
            if not entry[1]:
                entry[0].cancel()
                del self._ticks[tick]

    def _fire(self, tick: int) -> None:
        entry = self._ticks.pop(tick, None)
        if entry is not None:
            for deadline in entry[1]:
                deadline._expire()


class Deadline:
    """``asyncio.timeout`` for Python 3.10 too, armed when the function really starts.

    Entered in the job's task, which it cancels when it expires; leaving it after that
    raises ``TimeoutError`` in place of the cancellation.
    """

    __slots__ = ("_deadlines", "_expired", "_seconds", "_task", "_tick")

    def __init__(self, deadlines: Deadlines, seconds: float | None) -> None:
        self._deadlines = deadlines
        self._seconds = seconds
        self._task: asyncio.Task[Any] | None = None
        self._tick: int | None = None
        self._expired = False

    def expired(self) -> bool:
        """True once it expired (and cancelled its task)."""
        return self._expired

    def arm(self) -> None:
        """Start counting (once); a deadline of no finite time never expires."""
        seconds = self._seconds
        if seconds is None or self._tick is not None or self._task is None:
            return
        if math.isfinite(seconds):
            self._tick = self._deadlines._add(self, seconds)

    def _expire(self) -> None:
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    def __enter__(self) -> Deadline:
        self._task = asyncio.current_task()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._tick is not None:
            self._deadlines._remove(self, self._tick)
        if self._expired and exc_type is asyncio.CancelledError:
            uncancel()
            raise TimeoutError


def uncancel() -> None:
    """Forget one cancel request of the current task (3.11+; earlier versions keep none)."""
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()
