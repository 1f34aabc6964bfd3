"""Reading a queue as a whole: counts, listings, dead letters, health records, names.

A part of :class:`~jobwire.producer.Producer`; a sharded queue's reads cover every
partition (SPEC 12.10).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobwire.wire import DecodeError

from .errors import JobNotFound
from .keys import CONSUMER_GROUP, QueueKeys, queues_key
from .models import DeadLetter, JobInfo, JobResult, JobStatus
from .prepare import Prepared
from .protocol import Command, Gen, call, pipeline, script_command
from .routing import STATES, JobRef, QueueRouting
from .scripts import LIST_JOBS, QUEUE_SIZE
from .stored import dead_letter, glob_escape, scan, text

__all__ = ["QueueListings"]


class QueueListings(QueueRouting):
    """Counts, listings and dead letters of queues (a part of ``Producer``)."""

    # ------------------------------------------------------------- listings

    def queued_jobs(self, queue_name: str | None, limit: int) -> Gen[list[JobInfo]]:
        """Jobs waiting in a queue: up to ``limit`` queued, then up to ``limit`` deferred.

        Queued ones in order (a sharded queue's partition after partition), deferred ones
        by start time.
        """
        every = self.queues_of(queue_name)
        replies = yield from pipeline(
            [script_command(LIST_JOBS, (k.stream, k.deferred), (CONSUMER_GROUP, k.base, limit))
             for k in every]
        )  # fmt: skip
        rows = [JobInfo.from_stored(self._decode_job(data), STATES[state])
                for reply in replies for state, data in reply]  # fmt: skip
        if len(every) == 1:
            return rows
        queued = [r for r in rows if r.status is JobStatus.QUEUED][:limit]
        deferred = [r for r in rows if r.status is JobStatus.DEFERRED]
        deferred.sort(key=lambda r: r.defer_until or r.enqueue_time)
        return queued + deferred[:limit]

    def queue_size(self, queue_name: str | None) -> Gen[int]:
        """Number of jobs waiting in a queue (queued and deferred; not running)."""
        stats = yield from self.counts(self.queues_of(queue_name))
        return stats["queued"] + stats["deferred"]

    def queue_stats(self, queue_name: str | None) -> Gen[dict[str, int]]:
        """Counts of a queue: queued, deferred, in_progress and dead_letters.

        One round trip; a sharded queue's counts are the sums over its partitions.
        """
        return (yield from self.counts(self.queues_of(queue_name)))

    def counts(self, queues: Sequence[QueueKeys]) -> Gen[dict[str, int]]:
        """The sums of :meth:`queue_stats` over ``queues`` (one round trip)."""
        commands: list[Command] = []
        for keys in queues:
            commands += (
                script_command(QUEUE_SIZE, (keys.stream, keys.deferred), (CONSUMER_GROUP,)),
                Command(("XLEN", keys.dead)),
            )
        replies = yield from pipeline(commands)
        total = {"queued": 0, "deferred": 0, "in_progress": 0, "dead_letters": 0}
        for counts, dead in zip(replies[::2], replies[1::2], strict=True):
            queued, deferred, running = (int(n) for n in counts)
            total["queued"] += queued
            total["deferred"] += deferred
            total["in_progress"] += running
            total["dead_letters"] += int(dead)
        return total

    def all_job_results(self) -> Gen[list[JobResult]]:
        """The latest result of every job with a kept result, in every queue, newest first.

        Scans the keyspace (SCAN, O(number of keys)); results whose value this client cannot
        decode (pickle not accepted) are left out.
        """
        found = yield from scan(f"{glob_escape(self.prefix)}:{{*}}:results:*")
        out: list[JobResult] = []
        for start in range(0, len(found), 500):
            chunk = found[start : start + 500]
            latest = yield from pipeline([Command(("LINDEX", key, 0)) for key in chunk])
            for data in latest:
                if data is None:
                    continue
                try:
                    out.append(self._decode_result(data))
                except DecodeError:
                    continue
        out.sort(key=lambda r: r.finish_time, reverse=True)
        return out

    # -------------------------------------------------------------- dead letters

    def dead_letters(self, queue_name: str | None, limit: int) -> Gen[list[DeadLetter]]:
        """Dead-letter entries of a queue, newest first (of all its partitions when sharded).

        Each entry names the queue (partition) that holds it, for requeue and delete.
        """
        every = self.queues_of(queue_name)
        replies = yield from pipeline(
            [Command(("XREVRANGE", keys.dead, "+", "-", "COUNT", limit)) for keys in every]
        )
        out = [dead_letter(keys.queue, entry_id, fields)
               for keys, entries in zip(every, replies, strict=True)
               for entry_id, fields in entries]  # fmt: skip
        out.sort(key=lambda d: d.time, reverse=True)
        return out[:limit]

    def requeue_dead_letter(self, entry_id: str, queue_name: str | None) -> Gen[JobRef | None]:
        """Enqueue a dead-lettered message again, unchanged (its bytes, id and signature).

        Returns None when a job with its id exists already; raises JobNotFound for an
        unknown entry and a DecodeError when the message has no readable job id.
        """
        keys, entries = yield from self._holding_dead(entry_id, queue_name)
        if not entries:
            raise JobNotFound(f"no dead-letter entry {entry_id!r} in queue {keys.queue!r}")
        data = entries[0][1][b"data"]
        header = self.codec.read_job_header(data)
        job = Prepared(header.id, keys, data, None, None, header.function, header.job_try)
        reply = yield from call(self._enqueue_command(keys, header.id, data, None, None, None, job))
        if not reply:
            return None
        yield Command(("XDEL", keys.dead, entry_id))
        return self.ref(header.id, keys)

    def delete_dead_letter(self, entry_id: str, queue_name: str | None) -> Gen[bool]:
        """Delete one dead-letter entry; False if it did not exist."""
        keys = self.keys(queue_name)
        if len(self.queues_of(queue_name)) > 1:  # sharded: the partition holding the entry
            keys, _ = yield from self._holding_dead(entry_id, queue_name)
        removed = yield Command(("XDEL", keys.dead, entry_id))
        return bool(removed)

    def _holding_dead(self, entry_id: str, queue_name: str | None) -> Gen[tuple[QueueKeys, Any]]:
        """The partition whose dead letters hold ``entry_id``, and that entry (XRANGE reply).

        Entry ids are per partition: the first partition that has it (or the queue itself,
        with an empty reply, when none has). One round trip, whatever the partitions.
        """
        every = self.queues_of(queue_name)
        found = yield from pipeline(
            [Command(("XRANGE", keys.dead, entry_id, entry_id)) for keys in every]
        )
        return next(
            ((k, entries) for k, entries in zip(every, found, strict=True) if entries),
            (every[0], found[0]),
        )

    def health_records(self, queue_name: str | None) -> Gen[dict[str, bytes]]:
        """Health records of the live workers of a queue, by worker name.

        A sharded queue's workers record their health in each partition; the records of
        the first partition that has one are returned for each worker.
        """
        records: dict[str, bytes] = {}
        for keys in self.queues_of(queue_name):
            prefix = keys.health("")
            found = yield from scan(glob_escape(prefix) + "*", route=keys.stream)
            if not found:
                continue
            values = yield Command(("MGET", *found))  # one slot: MGET works on a cluster
            for key, value in zip(found, values, strict=True):
                if value is not None:
                    records.setdefault(text(key)[len(prefix) :], value)
        return records

    def register_queues(self, names: Sequence[str]) -> Gen[None]:
        """Record queue names for listings (workers do this at startup)."""
        yield Command(("SADD", queues_key(self.prefix), *names))

    def known_queues(self) -> Gen[list[str]]:
        """Names of the queues that have been enqueued to (each partition by its own)."""
        names = yield Command(("SMEMBERS", queues_key(self.prefix)))
        return sorted(text(n) for n in names)

    def listed_queues(self) -> Gen[list[str]]:
        """Names of the queues that have been enqueued to, a sharded queue's once."""
        known = yield from self.known_queues()
        return sorted({self.partitions.logical(n) for n in known})
