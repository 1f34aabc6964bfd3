"""What an operator does to a queue besides enqueueing: pause, resume, see what runs, retry.

:class:`QueueAdmin` is part of the protocol core (:class:`~jobwire.producer.Producer` is
one); the clients' ``pause``, ``resume``, ``is_paused`` and ``running_jobs`` run these
generators, and the in-memory twin overrides them.

A queue is paused while the key ``P:{Q}:paused`` exists (its value is the time it was
paused, in ms). Workers look at it at least once a second while they fetch and take no job
from a paused queue; what already runs goes on. Nothing else changes: jobs can still be
enqueued, listed and aborted.

A job that ended other than in success (error, timeout, aborted) leaves its envelope in
``P:{Q}:failed:ID`` for as long as its results are kept; :meth:`QueueAdmin.retry_job`
enqueues those bytes again, unchanged, under the same id.
"""

from __future__ import annotations

from typing import Any

from jobwire.wire import DecodeError, InvalidEnvelope

from .errors import JobNotFound, RedisCommandError
from .keys import CONSUMER_GROUP, QueueKeys
from .models import JobInfo, JobStatus
from .prepare import Prepared
from .protocol import Command, Gen, call, pipeline
from .routing import QueueRouting
from .stored import entry_data, text, with_index

__all__ = ["QueueAdmin"]


class QueueAdmin(QueueRouting):
    """Pausing, resuming and the running jobs of a queue (mixed into the Producer)."""

    def pause(self, queue_name: str | None, now_ms: int) -> Gen[bool]:
        """Pause a queue (each partition); False when it was paused already."""
        replies = yield from pipeline(
            [Command(("SET", k.paused, now_ms, "NX")) for k in self.queues_of(queue_name)]
        )
        return any(replies)

    def resume(self, queue_name: str | None) -> Gen[bool]:
        """Resume a paused queue (each partition); False when it was not paused."""
        removed = yield from pipeline(
            [Command(("DEL", k.paused)) for k in self.queues_of(queue_name)]
        )
        return any(removed)

    def is_paused(self, queue_name: str | None) -> Gen[bool]:
        """True while the queue (any of its partitions) is paused."""
        found = yield from pipeline(
            [Command(("EXISTS", k.paused)) for k in self.queues_of(queue_name)]
        )
        return any(found)

    def running_jobs(self, queue_name: str | None, limit: int) -> Gen[list[JobInfo]]:
        """Jobs a worker has taken and not finished yet, oldest first (at most ``limit``).

        Three round trips per partition: the range of the stream's pending entries (the
        leases), those entries, their jobs. An entry whose job ended meanwhile is left out.
        """
        out: list[JobInfo] = []
        for keys in self.queues_of(queue_name):
            if len(out) < limit:
                out += yield from self._running_in(keys, limit - len(out))
        return out

    def _running_in(self, keys: QueueKeys, limit: int) -> Gen[list[JobInfo]]:
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
        wanted = [(jid, fields) for jid, fields in ((_job_id(f), f) for _, f in found) if jid]
        if not wanted:
            return []
        names = ("data", "state", "tries", "worker", "started_ms")
        rows = yield from pipeline([Command(("HMGET", keys.job(jid), *names)) for jid, _ in wanted])
        out: list[JobInfo] = []
        for (_, fields), row in zip(wanted, rows, strict=True):
            if isinstance(row, BaseException) or row[1] != b"active":
                continue
            # a running job's envelope is in its entry (its hash's, written with plain commands)
            data, _state, tries, worker, started = row
            data = data or entry_data(fields)
            if data is None:
                continue
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

    def retry_job(self, job_id: str, queue_name: str | None) -> Gen[tuple[str, str] | None]:
        """Enqueue a failed job's kept envelope again, unchanged, under the same id.

        Returns (job id, queue) or None when a job with that id exists (again: queued,
        deferred or running). Raises JobNotFound when there is neither (the job succeeded,
        or its result expired) and DecodeError when the kept bytes are not a job of that id.
        """
        keys = self.job_keys(job_id, queue_name)
        # MGET, not GET: one command fewer for an ACL user to need (README, Security)
        indexed, ((data,), exists) = yield from with_index(
            keys,
            job_id,
            [Command(("MGET", keys.failed(job_id))), Command(("EXISTS", keys.job(job_id)))],
        )
        if indexed or exists:
            return None
        if not isinstance(data, bytes):
            raise JobNotFound(
                f"job {job_id!r} of queue {keys.queue!r} has no failed run kept to retry "
                "(it succeeded, or its result expired)"
            )
        header = self.codec.read_job_header(data)
        if header.id != job_id:  # untrusted bytes: never enqueue them under another id
            raise InvalidEnvelope(
                f"the kept envelope of job {job_id!r} names another", header=header
            )
        job = Prepared(job_id, keys, data, None, None, header.function, header.job_try)
        # an explicit retry: the failed run's results do not make the id taken
        command = self._enqueue_command(keys, job_id, data, None, None, None, job, unique=False)
        reply = yield from call(command)
        return self.ref(job_id, keys) if reply else None


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
