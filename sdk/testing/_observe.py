"""The in-memory twin's lifecycle events, progress and stats.

The twin records what a worker and the scripts record in Redis, in the same shapes (event
entries as field maps, stats as the fields of the minute and hour hashes), so the readers
of :mod:`jobwire.events` and :mod:`jobwire.stats` parse both alike. Mixed into
:class:`~._engine.MemoryProducer`, whose transitions call :meth:`_emit` and :meth:`_tally`.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobwire import stats as _stats
from jobwire.events import Event, Progress, parse_event, parse_progress, progress_json
from jobwire.producer import now_ms
from jobwire.protocol import Gen
from jobwire.stats import Resolution, Statistics

from ._store import MemoryQueue, MemoryStore, Wait, immediate

if TYPE_CHECKING:
    from jobwire.keys import QueueKeys

__all__ = ["MemoryObservations"]


def _b(value: object) -> bytes:
    return b"" if value is None else str(value).encode()


class MemoryObservations:
    """Event stream, progress and stats of the twin (see the module documentation)."""

    store: MemoryStore
    max_events: int

    if TYPE_CHECKING:  # provided by MemoryProducer

        def keys(self, queue_name: str | None = None) -> QueueKeys: ...

        def _refreshed(self, queue_name: str | None, now: int | None = None) -> Any: ...

    # ------------------------------------------------------------- writing (locked)

    def _emit(
        self,
        queue: MemoryQueue,
        kind: str,
        job_id: str,
        function: str,
        job_try: int | str = "",
        worker: str | None = None,
        ms: int | str = "",
        info: str | bytes = "",
    ) -> None:
        """Append an event to the queue's stream, trimmed to ``max_events``."""
        if not self.max_events:
            return
        at = max(now_ms(), queue.last_event[0])
        seq = queue.last_event[1] + 1 if at == queue.last_event[0] else 0
        queue.last_event = (at, seq)
        fields = {
            b"type": kind.encode(), b"job_id": job_id.encode(), b"function": function.encode(),
            b"try": _b(job_try), b"worker": _b(worker), b"duration_ms": _b(ms),
            b"info": info if isinstance(info, bytes) else info.encode(),
        }  # fmt: skip
        queue.events.append((f"{at}-{seq}", fields))
        del queue.events[: max(0, len(queue.events) - self.max_events)]

    def _tally(self, queue: MemoryQueue, function: str, outcome: str, ms: int | None) -> None:
        """Count an outcome (and its duration in ms, if it ran) in this minute and hour."""
        if not self.max_events:
            return
        now = now_ms()
        fields = {f"c:{outcome}:{function}": 1}
        if ms is not None:
            fields[f"b:{_stats.bucket_index(ms / 1000)}:{function}"] = 1
            fields[f"t:{function}"] = ms
        for resolution, width in _stats.RESOLUTIONS.items():
            bucket = queue.stats.setdefault((resolution, now // width * width), {})
            for name, n in fields.items():
                bucket[name] = bucket.get(name, 0) + n

    def record_progress(
        self, job_id: str, queue_name: str | None, value: float, message: str
    ) -> None:
        """A running job's progress report (what the worker's progress call writes)."""
        with self.store._cond:
            _, queue = self._refreshed(queue_name)
            job = queue.jobs.get(job_id)
            if job is None or job.state != "active":
                return
            job.progress = progress_json(value, message, now_ms())
            self._emit(
                queue, "progress", job_id, job.header.function, job.tries, job.worker,
                info=job.progress,
            )  # fmt: skip
            self.store._changed()

    # ------------------------------------------------------------------ reading

    @immediate
    def event_cursor(self, queue_name: str | None, since: str | None) -> str:
        """The id to follow from: ``since``, or the newest event's id now."""
        if since is not None:
            return since
        with self.store._cond:
            events = self._refreshed(queue_name)[1].events
            return events[-1][0] if events else "0-0"

    def read_events(
        self, queue_name: str | None, after: str, timeout: float | None
    ) -> Gen[tuple[list[Event], str]]:
        """Wait for events after ``after``: woken by the write, never polling."""
        deadline = None if timeout is None else time.monotonic() + timeout
        key = _id_key(after)
        while True:
            with self.store._cond:
                name, queue = self._refreshed(queue_name)
                new = [(i, f) for i, f in queue.events if _id_key(i) > key]
                version = self.store._version
            if new:
                events = [e for i, f in new if (e := parse_event(name, i, f)) is not None]
                return events, new[-1][0]
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return [], after
            yield Wait(self.store, version, remaining)

    @immediate
    def job_events(self, job_id: str, queue_name: str) -> list[Event]:
        """The job's events in the stream, oldest first (from its latest enqueue)."""
        with self.store._cond:
            name, queue = self._refreshed(queue_name)
            mine = [(i, f) for i, f in queue.events if f.get(b"job_id") == job_id.encode()]
        for n in range(len(mine) - 1, -1, -1):
            if mine[n][1].get(b"type") == b"enqueued":
                mine = mine[n:]
                break
        return [e for i, f in mine if (e := parse_event(name, i, f)) is not None]

    @immediate
    def progress(self, job_id: str, queue_name: str) -> Progress | None:
        """The latest progress the job reported while it waits or runs."""
        with self.store._cond:
            job = self._refreshed(queue_name)[1].jobs.get(job_id)
            return None if job is None else parse_progress(job.progress)

    @immediate
    def stats(
        self,
        queue_name: str | None,
        since: datetime | timedelta | None,
        function: str | None,
        resolution: Resolution,
    ) -> Statistics:
        """The queue's stats per minute or hour from ``since`` to now."""
        now = now_ms()
        starts = _stats.bucket_starts(resolution, _stats.since_ms(since, resolution, now), now)
        with self.store._cond:
            name, queue = self._refreshed(queue_name)
            raw = [dict(queue.stats.get((resolution, start), {})) for start in starts]
        hashes = [
            _stats.parse_stats_hash({k.encode(): str(v).encode() for k, v in h.items()}, function)
            for h in raw
        ]
        return _stats.statistics(name, resolution, starts, hashes)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
