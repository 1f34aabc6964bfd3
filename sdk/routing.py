"""What every part of the producer shares: a queue's keys, a job's partition, decoding.

:class:`QueueRouting` is the base of :class:`~jobwire.producer.Producer` and of its parts
(:mod:`jobwire.admin`, :mod:`jobwire.events`, :mod:`jobwire.listings`): which keys a queue
or a job has (a sharded queue's partitions included), the enqueue script call, and
decoding what Redis holds.
"""

from __future__ import annotations

import os
from typing import Any, Final

from jobwire.wire import Codec, FormatNotAccepted, JobHeader

from .enqueue_scripts import ENQUEUE, ENQUEUE_ONCE
from .keys import QueueKeys
from .models import JobResult, JobStatus
from .partitions import Partitions
from .prepare import Prepared
from .protocol import Command, script_command

__all__ = ["STATES", "JobRef", "QueueRouting"]

#: (job id, queue name): what an enqueue returns before the client wraps it in a handle.
JobRef = tuple[str, str]

#: a job hash's ``state`` and what it means to a caller
STATES: Final = {
    b"deferred": JobStatus.DEFERRED,
    b"queued": JobStatus.QUEUED,
    b"active": JobStatus.IN_PROGRESS,
}


class QueueRouting:
    """Key names, partitions and decoding (set up by ``Producer.__init__``)."""

    codec: Codec
    prefix: str
    queue_name: str
    partitions: Partitions
    max_events: int
    unique_while_result_kept: bool
    _keys: dict[str, QueueKeys]

    def keys(self, queue_name: str | None = None) -> QueueKeys:
        """Key names of a queue (the default queue when None)."""
        name = self.queue_name if queue_name is None else queue_name
        keys = self._keys.get(name)
        if keys is None:
            keys = self._keys[name] = QueueKeys(self.prefix, name)
        return keys

    def job_keys(self, job_id: str, queue_name: str | None) -> QueueKeys:
        """Key names of the queue, or of its partition, that holds job ``job_id``."""
        keys = self.keys(queue_name)
        if keys.queue in self.partitions.counts:
            return self.keys(self.partitions.of_job(keys.queue, job_id))
        return keys

    def queues_of(self, queue_name: str | None) -> list[QueueKeys]:
        """Key names of every partition of a queue (the queue alone when not sharded)."""
        keys = self.keys(queue_name)
        if keys.queue in self.partitions.counts:
            return [self.keys(n) for n in self.partitions.of_queue(keys.queue)]
        return [keys]

    def ref(self, job_id: str, keys: QueueKeys) -> JobRef:
        """The handle's (job id, queue name) of a job stored in ``keys``' queue."""
        return (job_id, self.partitions.logical(keys.queue))

    def _enqueue_command(
        self,
        keys: QueueKeys,
        job_id: str,
        data: bytes,
        due: int | None,
        expires: int | None,
        once: tuple[str, int] | None = None,
        job: Prepared | None = None,
        unique: bool | None = None,
    ) -> Command:
        job_keys = [keys.job(job_id), keys.stream, keys.deferred, keys.wake,
                    keys.results(job_id), keys.done(job_id)]  # fmt: skip
        events: tuple[list[str], list[Any]] = ([], [])
        if self.max_events and job is not None:  # the job's event (SPEC 12.7)
            events = [keys.lifecycle], [job.function, job.job_try - 1, self.max_events]
        argv: list[Any] = [
            job_id,
            data,
            "" if due is None else due,
            "" if expires is None else expires,
            "1" if (self.unique_while_result_kept if unique is None else unique) else "0",
            # a resent call is known by its token; one whose id was made for it, by the id
            # and envelope it stored (SPEC 12.3), so it needs none
            "" if job is not None and job.fresh_id else os.urandom(8).hex(),
        ]
        if once is None:
            return script_command(ENQUEUE, [*job_keys, *events[0]], [*argv, *events[1]])
        return script_command(
            ENQUEUE_ONCE,
            [*job_keys, keys.once(once[0]), *events[0]],
            [*argv, once[1], *events[1]],
        )

    def _decode_job(self, data: bytes) -> JobHeader:
        """The whole job when its format is accepted here, else its metadata only."""
        try:
            return self.codec.decode_job(data)
        except FormatNotAccepted as exc:
            if exc.header is None:
                raise
            return exc.header

    def _decode_result(self, data: bytes) -> JobResult:
        return JobResult.from_envelope(self.codec.decode_result(data))
