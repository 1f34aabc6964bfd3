"""What an operator does to a queue besides enqueueing: pause it, resume it, see what runs.

:class:`QueueAdmin` is part of the protocol core (:class:`~jobwire.producer.Producer` is
one); the clients' ``pause``, ``resume``, ``is_paused`` and ``running_jobs`` run these
generators, and the in-memory twin overrides them.

A queue is paused while the key ``P:{Q}:paused`` exists (its value is the time it was
paused, in ms). Workers look at it at least once a second while they fetch and take no job
from a paused queue; what already runs goes on. Nothing else changes: jobs can still be
enqueued, listed and aborted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobwire.wire import DecodeError

from .errors import RedisCommandError
from .keys import CONSUMER_GROUP, QueueKeys
from .models import JobInfo, JobStatus
from .protocol import Command, Gen, pipeline
from .stored import text

if TYPE_CHECKING:
    from jobwire.wire import JobHeader

__all__ = ["QueueAdmin"]


class QueueAdmin:
    """Pausing, resuming and the running jobs of a queue (mixed into the Producer)."""

    if TYPE_CHECKING:

        def keys(self, queue_name: str | None = None) -> QueueKeys:  # noqa: D102
            ...
        def _decode_job(self, data: bytes) -> JobHeader: ...

    def pause(self, queue_name: str | None, now_ms: int) -> Gen[bool]:
        """Pause a queue; False when it was paused already."""
        reply = yield Command(("SET", self.keys(queue_name).paused, now_ms, "NX"))
        return bool(reply)

    def resume(self, queue_name: str | None) -> Gen[bool]:
        """Resume a paused queue; False when it was not paused."""
        removed = yield Command(("DEL", self.keys(queue_name).paused))
        return bool(removed)

    def is_paused(self, queue_name: str | None) -> Gen[bool]:
        """True while the queue is paused."""
        found = yield Command(("EXISTS", self.keys(queue_name).paused))
        return bool(found)

    def running_jobs(self, queue_name: str | None, limit: int) -> Gen[list[JobInfo]]:
        """Jobs a worker has taken and not finished yet, oldest first (at most ``limit``).

        Three round trips: the range of the stream's pending entries (the leases), those
        entries, their jobs. An entry whose job ended meanwhile is left out.
        """
        keys = self.keys(queue_name)
        try:
            summary = yield Command(("XPENDING", keys.stream, CONSUMER_GROUP))
        except RedisCommandError as exc:
            if "NOGROUP" in str(exc):  # no worker has read this queue yet
                return []
            raise
        first, last = _pending_range(summary)
        if first is None or last is None:
            return []
        # Every entry from the first to the last pending one is pending: finished entries
        # are deleted from the stream, and entries not yet delivered come after the last.
        found = yield Command(("XRANGE", keys.stream, first, last, "COUNT", limit))
        wanted = [jid for jid in (_job_id(fields) for _, fields in found) if jid]
        if not wanted:
            return []
        fields = ("data", "state", "tries", "worker", "started_ms")
        rows = yield from pipeline([Command(("HMGET", keys.job(jid), *fields)) for jid in wanted])
        out: list[JobInfo] = []
        for row in rows:
            if isinstance(row, BaseException) or row[0] is None or row[1] != b"active":
                continue
            data, _state, tries, worker, started = row
            try:
                header = self._decode_job(data)
                out.append(
                    JobInfo.from_stored(
                        header,
                        JobStatus.IN_PROGRESS,
                        tries=int(tries or 0),
                        worker=text(worker) if worker else None,
                        started_ms=int(started) if started else None,
                    )
                )
            except (DecodeError, ValueError):  # an odd job is left out, alone
                continue
        return out


def _pending_range(summary: Any) -> tuple[Any, Any]:
    """The first and last pending entry ids of an ``XPENDING`` summary (None when none)."""
    if isinstance(summary, dict):
        return summary.get("min"), summary.get("max")
    if isinstance(summary, (list, tuple)) and len(summary) >= 3:
        return summary[1], summary[2]
    return None, None


def _job_id(fields: Any) -> str:
    """The job id of a stream entry's fields ('' when odd)."""
    jid = fields.get(b"job", b"") if isinstance(fields, dict) else b""
    return text(jid) if isinstance(jid, bytes) and jid else ""
