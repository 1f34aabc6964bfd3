"""The producer side of the protocol: every client operation, written once as a generator.

:class:`Producer` holds a client's configuration and builds the Redis conversation of each
operation; it never touches a socket (see :mod:`jobwire.protocol`). ``Client`` and
``AsyncClient`` drive these generators with their own driver and wrap the values they
return in handles.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, Final

from jobwire.wire import (
    Codec,
    DecodeError,
    ErrorRecord,
    Format,
    FormatNotAccepted,
    JobHeader,
    ResultEnvelope,
    check_format,
)

from . import defaults, tracing
from .admin import QueueAdmin
from .errors import (
    RedisCommandError,
    ReplicationTimeout,
    WaitTimeout,
)
from .events import EventReads
from .keys import CONSUMER_GROUP, DEFAULT_PREFIX, QueueKeys, check_name, queues_key
from .listings import QueueListings
from .models import JobInfo, JobResult, JobSpec, JobStatus, seconds
from .outcomes import result_not_found, unwrap
from .partitions import Partitions
from .prepare import Prepared, prepare_job
from .protocol import Command, Gen, call, call_script, pipeline
from .routing import STATES, JobRef
from .scripts import ABORT
from .stored import job_fields, stored_state, text, with_index, with_indexes

__all__ = [
    "DEFAULT_QUEUE",
    "JobRef",
    "Producer",
    "now_ms",
]

DEFAULT_QUEUE: Final = defaults.DEFAULT_QUEUE

_NO_TIMEOUT: Final = float("inf")


def now_ms() -> int:
    """Milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


class Producer(QueueAdmin, EventReads, QueueListings):
    """Configuration plus the generator of every producer-side operation.

    ``max_events`` caps each queue's event stream; 0 writes no events or stats.
    """

    def __init__(
        self,
        *,
        codec: Codec,
        prefix: str = DEFAULT_PREFIX,
        queue_name: str = DEFAULT_QUEUE,
        serializer: Format = "json",
        keep_result: float = defaults.KEEP_RESULT,
        unique_while_result_kept: bool = False,
        max_block: float = 4.0,
        max_events: int = defaults.MAX_EVENTS,
        partitions: Mapping[str, int] | None = None,
    ) -> None:
        self.codec = codec
        self.prefix = check_name("prefix", prefix)
        self.queue_name = check_name("queue name", queue_name)
        self.serializer: Format = check_format(serializer)
        self.keep_result_ms = int(seconds(keep_result, "keep_result") * 1000)
        self.unique_while_result_kept = unique_while_result_kept
        # longest server-side block of one command; stays under the socket timeout
        self.max_block = max_block
        self.max_events = max_events
        self._keys: dict[str, QueueKeys] = {}
        # sharded queues: which partition holds a job, which make up a queue
        self.partitions = Partitions(partitions)
        self._registered: set[str] = set()
        # RedisSettings.wait_replicas / wait_timeout: enqueues WAIT for that many replicas
        self.wait_replicas = 0
        self.wait_timeout_ms = 1000

    # ----------------------------------------------------------------- enqueue

    def prepare(self, spec: JobSpec, now: int, trace: Mapping[str, str] | None = None) -> Prepared:
        """Check a job's options and encode it (what every enqueue starts with).

        ``trace``: trace-context headers of the enqueue's span (a job's own win).
        """
        keys = self.keys(spec.options.queue_name)
        route = None
        if keys.queue in self.partitions.counts:
            route = partial(self.job_keys, queue_name=keys.queue)
        return prepare_job(spec, now, keys, self.serializer, self.codec, trace, route)

    def build(
        self,
        spec: JobSpec,
        now: int,
        once: tuple[str, int] | None = None,
        trace: Mapping[str, str] | None = None,
    ) -> tuple[JobRef, QueueKeys, Command]:
        """Encode one job and the script call that enqueues it (with the keys it writes).

        ``once`` = (marker name, ttl ms) enqueues only if that marker was not set before
        (one cron run per scheduled time, whatever the number of workers).
        """
        job = self.prepare(spec, now, trace)
        command = self._enqueue_command(
            job.keys, job.job_id, job.data, job.due_ms, job.expires_ms, once, job
        )
        return self.ref(job.job_id, job.keys), job.keys, command

    def _registration(self, queues: Sequence[str]) -> list[Command]:
        """SADD of queue names this client has not registered yet (for listings).

        The names count as registered once the call that carries it succeeded (a refused or
        lost SADD is sent again with the next enqueue).
        """
        if len(queues) == 1 and queues[0] in self._registered:  # (every enqueue asks)
            return []
        new = sorted(set(queues) - self._registered)
        return [Command(("SADD", queues_key(self.prefix), *new))] if new else []

    def _registered_by(self, register: list[Command]) -> None:
        for command in register:
            self._registered.update(str(name) for name in command.args[2:])

    def _waits(self, queues: Iterable[str]) -> dict[str, Command]:
        """``WAIT`` for the replicas, one per queue (its slot's master on a cluster).

        Each follows the queue's writes in the same pipeline, so it is sent on the
        connection that wrote them: ``WAIT`` counts the replicas that have *that
        connection's* writes.
        """
        if not self.wait_replicas:
            return {}
        wait = ("WAIT", self.wait_replicas, self.wait_timeout_ms)
        return {q: Command(wait, route=self.keys(q).stream) for q in sorted(set(queues))}

    def _check_replicated(self, written: Sequence[tuple[str, str]], acks: dict[str, Any]) -> None:
        """Raise ReplicationTimeout naming the jobs whose queue's WAIT confirmed too few.

        ``written``: (job id, queue) of each job written; ``acks``: each queue's WAIT
        reply. Jobs of a queue (a slot's master) whose replicas confirmed enough are fine.
        """
        short = [(job_id, int(acks[q])) for job_id, q in written
                 if q in acks and int(acks[q]) < self.wait_replicas]  # fmt: skip
        if not short:
            return
        ids = tuple(job_id for job_id, _ in short)
        acknowledged = min(n for _, n in short)
        raise ReplicationTimeout(
            f"only {acknowledged} of {self.wait_replicas} replicas confirmed the enqueue of "
            f"{', '.join(ids[:3])}{' ...' if len(ids) > 3 else ''} within "
            f"{self.wait_timeout_ms / 1000}s; the job was written on the master and may "
            "still run (or be lost if that master fails now)",
            job_ids=ids,
            acknowledged=acknowledged,
            wanted=self.wait_replicas,
        )

    def enqueue(self, spec: JobSpec, once: tuple[str, int] | None = None) -> Gen[JobRef | None]:
        """Enqueue one job; None when its id is taken (or ``once`` was used already).

        With ``wait_replicas`` it returns once that many replicas have the job, or raises
        :class:`~jobwire.ReplicationTimeout`.
        """
        with tracing.send(self.keys(spec.options.queue_name).queue) as span:
            ref, keys, command = self.build(spec, now_ms(), once, span.headers)
            span.sent(ref[0])
            register = self._registration((keys.queue,))
            waits = self._waits((keys.queue,))
            if register or waits:
                replies = yield from pipeline([*register, command, *waits.values()])
                self._registered_by(register)
                reply = replies[len(register)]
                acks = dict(zip(waits, replies[len(register) + 1 :], strict=True))
                self._check_replicated([(ref[0], keys.queue)] if reply else [], acks)
            else:
                reply = yield from call(command)
        return ref if reply else None

    def enqueue_many(self, specs: Iterable[JobSpec]) -> Gen[list[JobRef | None]]:
        """Enqueue many jobs in one round trip; None in place of each job whose id is taken."""
        specs = list(specs)
        if not specs:
            return []
        now = now_ms()
        queues = {self.keys(spec.options.queue_name).queue for spec in specs}
        with tracing.send(queues.pop() if len(queues) == 1 else "(several)", len(specs)) as span:
            built = [self.build(spec, now, None, span.headers) for spec in specs]
            register = self._registration([keys.queue for _, keys, _ in built])
            waits = self._waits(keys.queue for _, keys, _ in built)
            commands = [*register, *(command for _, _, command in built), *waits.values()]
            replies = yield from pipeline(commands)
            self._registered_by(register)
            acks = dict(zip(waits, replies[len(replies) - len(waits) :], strict=True))
            replies = replies[len(register) : len(replies) - len(waits)]
            refs = [
                ref if reply else None for (ref, _, _), reply in zip(built, replies, strict=True)
            ]
            written = [
                (ref[0], keys.queue)
                for (ref, keys, _), reply in zip(built, replies, strict=True)
                if reply
            ]
            self._check_replicated(written, acks)
        return refs

    # ------------------------------------------------------------ job state

    def status(self, job_id: str, queue_name: str) -> Gen[JobStatus]:
        """Where the job is in its life."""
        keys = self.job_keys(job_id, queue_name)
        indexed, (state, has_result) = yield from with_index(
            keys,
            job_id,
            [
                Command(("HGET", keys.job(job_id), "state")),
                Command(("EXISTS", keys.results(job_id))),
            ],
        )
        state = stored_state(indexed, state)
        if state in STATES:
            return STATES[state]
        return JobStatus.COMPLETE if has_result else JobStatus.NOT_FOUND

    def outcome(self, job_id: str, queue_name: str) -> Gen[str | None]:
        """How the job ended; None while it waits or runs, or when nothing of it is kept."""
        keys = self.job_keys(job_id, queue_name)
        indexed, (state, latest) = yield from with_index(
            keys,
            job_id,
            [
                Command(("HGET", keys.job(job_id), "state")),
                Command(("LINDEX", keys.results(job_id), 0)),
            ],
        )
        if stored_state(indexed, state) in STATES or latest is None:
            return None
        try:
            return self._decode_result(latest).outcome
        except FormatNotAccepted:  # only a pickled success value is unreadable without pickle
            return "success"

    def info(self, job_id: str, queue_name: str) -> Gen[JobInfo | None]:
        """The job as stored while deferred, queued or running; None otherwise."""
        keys = self.job_keys(job_id, queue_name)
        data, (state, tries, worker, started) = yield from job_fields(
            keys, job_id, "state", "tries", "worker", "started_ms"
        )
        if data is None or state not in STATES:
            return None
        return JobInfo.from_stored(
            self._decode_job(data),
            STATES[state],
            tries=int(tries or 0),
            worker=text(worker) if worker else None,
            started_ms=int(started) if started else None,
        )

    def result_info(self, job_id: str, queue_name: str) -> Gen[JobResult | None]:
        """The latest execution's result, if kept."""
        latest = yield Command(("LINDEX", self.job_keys(job_id, queue_name).results(job_id), 0))
        return None if latest is None else self._decode_result(latest)

    def results(self, job_id: str, queue_name: str) -> Gen[list[JobResult]]:
        """Results of the latest executions (up to 10), newest first."""
        entries = yield Command(("LRANGE", self.job_keys(job_id, queue_name).results(job_id), 0, 9))
        return [self._decode_result(e) for e in entries]

    def wait_final(self, job_id: str, queue_name: str, timeout: float | None) -> Gen[JobResult]:
        """Block until the job has a final result and return it.

        No polling: the worker pushes a token onto the job's ``done`` list when it writes the
        final result, and the waiter blocks on that list with BLMOVE (a rotation, so every
        waiter wakes and the token stays for the next one).
        """
        keys = self.job_keys(job_id, queue_name)
        job_key, results_key, done_key = keys.job(job_id), keys.results(job_id), keys.done(job_id)
        deadline = _NO_TIMEOUT if timeout is None else time.monotonic() + timeout
        while True:
            indexed, (exists, latest) = yield from with_index(
                keys, job_id, [Command(("EXISTS", job_key)), Command(("LINDEX", results_key, 0))]
            )
            if not (indexed or exists):
                if latest is None:
                    searched = self.partitions.logical(keys.queue)
                    elsewhere = yield from self._queues_holding(job_id, searched)
                    raise result_not_found(job_id, searched, elsewhere)
                return self._decode_result(latest)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"no result for job {job_id!r} within {timeout}s", job_id=job_id)
            block = max(0.01, min(remaining, self.max_block))
            yield Command(("BLMOVE", done_key, done_key, "RIGHT", "LEFT", round(block, 3)))

    def _queues_holding(self, job_id: str, searched: str) -> Gen[list[str]]:
        """The other known queues in which the job is waiting, running or has a result."""
        known = yield from self.known_queues()
        names = [n for n in known if self.partitions.logical(n) != searched][:100]
        if not names:
            return []
        jobs = [(self.keys(n), job_id) for n in names]
        indexed, counts = yield from with_indexes(
            jobs, [Command(("EXISTS", k.job(job_id), k.results(job_id))) for k, _ in jobs]
        )
        return sorted(
            {
                self.partitions.logical(n)
                for n, i, count in zip(names, indexed, counts, strict=True)
                if i or count
            }
        )

    def result(self, job_id: str, queue_name: str, timeout: float | None) -> Gen[Any]:
        """The job's return value, waiting for it; raises JobFailed when it did not succeed."""
        return unwrap((yield from self.wait_final(job_id, queue_name, timeout)))

    def abort(self, job_id: str, queue_name: str, timeout: float | None) -> Gen[bool]:
        """Abort a job: a waiting one is removed, a running one is asked to stop.

        Returns True when the job ends aborted, False when it was not found or finished
        another way first; raises WaitTimeout if a running job has not stopped in time.
        """
        keys = self.job_keys(job_id, queue_name)
        data, _ = yield from job_fields(keys, job_id)
        if data is None:
            return False
        aborted = self._aborted_result(job_id, self.partitions.logical(keys.queue), data)
        reply = yield from call_script(
            ABORT,
            (keys.job(job_id), keys.stream, keys.deferred),
            (CONSUMER_GROUP, keys.base, job_id, self.codec.encode_result(aborted),
             self.keep_result_ms, now_ms(), self.max_events, aborted.function),
        )  # fmt: skip
        if reply == 0:
            return False
        if reply == 1:
            return True
        final = yield from self.wait_final(job_id, queue_name, timeout)
        return final.outcome == "aborted"

    def _aborted_result(self, job_id: str, queue: str, data: bytes) -> ResultEnvelope:
        try:
            header = self.codec.read_job_header(data)
        except DecodeError:
            header = JobHeader(id=job_id, function="unknown", queue=queue, enqueued_ms=0)
        now = now_ms()
        return ResultEnvelope.of(
            replace(header, id=job_id, queue=queue),
            outcome="aborted",
            error=ErrorRecord("jobwire.JobAborted", "aborted before it started"),
            started_ms=now,
            finished_ms=now,
        )

    def ping(self) -> Gen[bool]:
        """Check that Redis answers."""
        reply = yield Command(("PING",))
        if not reply:
            raise RedisCommandError("Redis did not answer PING")
        return True
