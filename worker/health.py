"""The worker's view of Redis and of itself: clock offset, memory policy, health record.

* **Clock.** Deferral and expiry compare times written by clients with the worker's "now".
  The worker measures its clock's offset to Redis's ``TIME`` at startup and at every health
  refresh and uses Redis time for every such decision, so a worker whose clock is wrong
  still starts deferred jobs on time and expires jobs correctly. (Leases use Redis's own
  idle times and never depended on the worker's clock.)
* **Memory policy.** With any ``maxmemory-policy`` but ``noeviction`` Redis may evict queued
  jobs, deferred sets and results without telling anyone; the worker warns at startup and
  puts the policy in its record, which ``jobwire info`` and ``--check`` show.
* **Health record.** One per served queue, refreshed every ``health_check_interval``
  seconds with current counts and the state of every loop, removed on a graceful stop.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import orjson

from jobwire._version import __version__
from jobwire.health import redis_time_ms
from jobwire.protocol import Command, Gen

__all__ = ["RedisClock", "health_key_commands", "health_record", "memory_policy"]

logger = logging.getLogger("jobwire.worker")


def memory_policy(route: str | None = None) -> Gen[tuple[str, int]]:
    """Redis's ``maxmemory_policy`` and ``maxmemory`` (bytes; 0 means no limit).

    On a cluster: of the master of ``route``'s slot.
    """
    info = yield Command(("INFO", "memory"), route=route)
    if isinstance(info, dict):  # redis-py parses INFO into a dict
        fields = {str(k): str(v) for k, v in info.items()}
    else:
        text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    limit = fields.get("maxmemory", "0").strip()
    return fields.get("maxmemory_policy", "").strip(), int(limit) if limit.isdigit() else 0


class RedisClock:
    """The process's clock, corrected by its measured offset to Redis's."""

    def __init__(self, route: str | None = None) -> None:
        self.offset_ms = 0
        self.route = route  # on a cluster: the clock of the master of this key's slot

    def now_ms(self) -> int:
        """Redis's time now, as well as this process can tell, in milliseconds."""
        return int(time.time() * 1000) + self.offset_ms

    def measure(self) -> Gen[int]:
        """Measure the offset to Redis's clock (three TIME calls); return it.

        The sample with the shortest round trip counts, read halfway between send and
        reply. An offset within that round trip (plus 5 ms) cannot be told from none and
        counts as none, so a right clock is never "corrected" by noise.
        """
        best: tuple[float, int] | None = None
        for _ in range(3):
            sent = time.time() * 1000
            server = yield from redis_time_ms(self.route)
            received = time.time() * 1000
            sample = (received - sent, int(server - (sent + received) / 2))
            best = sample if best is None or sample[0] < best[0] else best
        assert best is not None
        rtt, offset = best
        if abs(offset) <= rtt + 5:
            offset = 0
        if abs(offset - self.offset_ms) > 1000:
            logger.warning(
                "this machine's clock is %+.1fs off Redis's: jobwire uses Redis time for "
                "deferral and expiry (fix the clock with NTP all the same)",
                -offset / 1000,
            )
        self.offset_ms = offset
        return offset


def health_record(
    *,
    worker: str,
    queue: str,
    queued: int,
    interval: float,
    now_ms: int,
    counts: dict[str, int],
    loops: dict[str, Any],
    extra: dict[str, Any],
) -> bytes:
    """Build the JSON health record of one worker on one queue (read by ``jobwire.health``)."""
    return orjson.dumps(
        {
            "worker": worker,
            "queue": queue,
            "time_ms": now_ms,
            "interval_ms": int(interval * 1000),
            "queued": queued,
            **counts,
            "loops": loops,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": __version__,
            **extra,
        }
    )


def health_key_commands(key: str, record: bytes | None, interval: float) -> Command:
    """Write the record (expiring after three missed refreshes), or delete it (None)."""
    if record is None:
        return Command(("DEL", key))
    return Command(("SET", key, record, "PX", max(1, int(interval * 3000) + 1000)))
