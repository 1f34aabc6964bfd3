"""Job timeouts: a job's task is cancelled when its time is up, counted from its real start.

Deadlines are grouped: one event-loop timer serves every job whose deadline falls in the
same slice of time, a hundredth of the timeout (at least 10 ms, at most a second). A timer
per job, set as it starts and cancelled as it ends (nearly always long before it would
fire), was a few percent of a short job's cost. A timeout fires at most one slice late. A
slice's timer is left to fire even once its jobs have ended: a worker holds at most one
timer per slice within a timeout of now, about a hundred per timeout value up to 100 s and
one a second beyond (an hour's timeout: 3,600 small objects at most).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

__all__ = ["MAX_SLICE", "MIN_SLICE", "Deadline", "Deadlines", "uncancel"]

#: The shortest and the longest slice of deadlines one timer serves (seconds).
MIN_SLICE = 0.01
MAX_SLICE = 1.0

_Key = tuple[float, int]  # (slice width, slice number)


class Deadlines:
    """The deadlines of one worker's running jobs (used on its event loop only)."""

    def __init__(self) -> None:
        self._slices: dict[_Key, set[Deadline]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def deadline(self, seconds: float | None) -> Deadline:
        """A job's deadline, ``seconds`` after it is armed (None: none)."""
        return Deadline(self, seconds)

    def pending(self) -> int:
        """Timers set now (one per slice of time that held a deadline)."""
        return len(self._slices)

    def _add(self, deadline: Deadline, seconds: float) -> _Key:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a worker run again, on a new loop: the old timers are gone
            self._slices, self._loop = {}, loop
        width = min(max(seconds / 100, MIN_SLICE), MAX_SLICE)
        key = (width, math.ceil((loop.time() + seconds) / width))
        held = self._slices.get(key)
        if held is None:
            held = self._slices[key] = set()
            loop.call_at(key[1] * width, self._fire, key)
        held.add(deadline)
        return key

    def _remove(self, deadline: Deadline, key: _Key) -> None:
        held = self._slices.get(key)
        if held is not None:
            held.discard(deadline)

    def _fire(self, key: _Key) -> None:
        for deadline in self._slices.pop(key, ()):
            deadline._expire()


class Deadline:
    """``asyncio.timeout`` for Python 3.10 too, armed when the function really starts.

    Entered in the job's task, which it cancels when it expires; leaving it after that
    raises ``TimeoutError`` in place of the cancellation.
    """

    __slots__ = ("_deadlines", "_expired", "_seconds", "_slice", "_task")

    def __init__(self, deadlines: Deadlines, seconds: float | None) -> None:
        self._deadlines = deadlines
        self._seconds = seconds
        self._task: asyncio.Task[Any] | None = None
        self._slice: _Key | None = None
        self._expired = False

    def expired(self) -> bool:
        """True once it expired (and cancelled its task)."""
        return self._expired

    def arm(self) -> None:
        """Start counting (once); a deadline of no finite time never expires."""
        seconds = self._seconds
        if seconds is None or self._slice is not None or self._task is None:
            return
        if math.isfinite(seconds):
            self._slice = self._deadlines._add(self, seconds)

    def _expire(self) -> None:
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    def __enter__(self) -> Deadline:
        self._task = asyncio.current_task()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._slice is not None:
            self._deadlines._remove(self, self._slice)
        if self._expired and exc_type is asyncio.CancelledError:
            uncancel()
            raise TimeoutError


def uncancel() -> None:
    """Forget one cancel request of the current task (3.11+; earlier versions keep none)."""
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):
        task.uncancel()
