"""Reading workers' health records: the one rule of what "healthy" means.

A worker refreshes its record every ``interval_ms`` (5 s by default) and removes it when it
stops gracefully; the key expires after three missed refreshes. A record is **live** when it
was refreshed within two intervals of Redis's clock; a live worker is **healthy** when every
one of its loops is running or legitimately waiting and none has gone longer without
progress than it promised. ``jobwire info`` and ``jobwire worker ... --check`` both use
:func:`assess`. Records are read from Redis: every field is checked, nothing is trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from .protocol import Command, Gen

__all__ = ["Assessment", "assess", "redis_time_ms"]

_OK_STATES = ("running", "waiting", "done", "starting")


@dataclass(frozen=True, slots=True)
class Assessment:
    """What one health record says, judged against Redis's clock."""

    worker: str
    live: bool
    healthy: bool
    problems: tuple[str, ...]
    record: dict[str, Any] = field(repr=False)
    warnings: tuple[str, ...] = ()

    def count(self, name: str) -> int:
        """A counter of the record (complete, failed, ...), 0 when absent or odd."""
        return _int(self.record.get(name), 0)


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    if isinstance(value, float) and not math.isfinite(value):
        return default
    return int(value)


def assess(worker: str, raw: bytes, now_ms: int) -> Assessment:
    """Judge the health record ``raw`` of ``worker`` at Redis time ``now_ms``."""
    try:
        record = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        record = None
    if not isinstance(record, dict):
        return Assessment(worker, False, False, ("the health record is not a JSON object",), {})
    interval = max(_int(record.get("interval_ms"), 60_000), 1)
    age = now_ms - _int(record.get("time_ms"), 0)
    problems: list[str] = []
    live = age <= 2 * interval
    if not live:
        problems.append(f"its health record is stale ({age / 1000:.0f}s old)")
    loops = record.get("loops")
    if not isinstance(loops, dict):
        problems.append("its health record lists no loops")
        loops = {}
    for name, loop in loops.items():
        if not isinstance(loop, dict):
            problems.append(f"loop {name!s}: unreadable state")
            continue
        state = loop.get("state")
        if state not in _OK_STATES:
            error = loop.get("error")
            detail = f": {error}" if isinstance(error, str) and error else ""
            problems.append(f"loop {name!s} is {state!s}{detail}")
            continue
        stall = _int(loop.get("stall_after_ms"), 0)
        idle = _int(record.get("time_ms"), 0) - _int(loop.get("last_progress_ms"), 0)
        if state == "running" and stall and idle > stall:
            problems.append(f"loop {name!s} made no progress for {idle / 1000:.0f}s")
    strays = record.get("stray_partitions")
    if isinstance(strays, dict) and strays:
        names = ", ".join(f"{name!s} ({count!s})" for name, count in list(strays.items())[:10])
        problems.append(
            f"jobs wait in queue partitions no worker with its settings serves: {names} "
            "(producers and workers must use the same partitions= setting)"
        )
    warnings = []
    policy = record.get("maxmemory_policy")
    if isinstance(policy, str) and policy and policy != "noeviction":
        warnings.append(
            f"Redis maxmemory-policy is {policy!r}: Redis may evict queued jobs and results "
            "silently; use noeviction"
        )
    return Assessment(worker, live, live and not problems, tuple(problems), record, tuple(warnings))


def redis_time_ms(route: str | None = None) -> Gen[int]:
    """Redis's clock, in milliseconds (what health records are judged against).

    On a cluster: the clock of the master of ``route``'s slot (any node when None).
    """
    seconds, micros = yield Command(("TIME",), route=route)
    return int(seconds) * 1000 + int(micros) // 1000
