"""The in-memory twin's engine: a protocol core over a :class:`MemoryStore`.

:class:`MemoryProducer` subclasses the Redis :class:`~jobwire.producer.Producer` and overrides every
operation, so the client shells (``Client``, ``AsyncClient``, ``Job``, ``AsyncJob``) run
unchanged on top of it: only their driver differs. Jobs are checked and encoded exactly as
for Redis (same options, same codec, same errors) and kept as bytes, so what a test reads
back went through the same wire format as in production. Jobs run by the worker's own rules
(:mod:`jobwire.worker.attempt`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from jobwire.errors import InvalidArgument, JobNotFound, WaitTimeout
from jobwire.keys import check_name
from jobwire.models import DeadLetter, JobInfo, JobResult, JobSpec, JobStatus
from jobwire.outcomes import result_not_found
from jobwire.partitions import Partitions
from jobwire.prepare import Prepared
from jobwire.producer import JobRef, Producer, now_ms
from jobwire.protocol import Gen
from jobwire.wire import DecodeError, ErrorRecord, ResultEnvelope
from jobwire.worker.attempt import (
    dead_letter_result,
    encode_result,
    try_number,
)
from jobwire.worker.functions import DEFAULT_MAX_TRIES

from ._admin import MemoryAdmin
from ._dead import MemoryDeadLetters
from ._eager import run_job
from ._observe import MemoryObservations
from ._store import (
    CLIENT_KEEP,
    DEAD_CAP,
    STATUS,
    WORKER_NAME,
    MemoryQueue,
    MemoryStore,
    StoredJob,
    Wait,
    immediate,
)

__all__ = ["DEFAULT_MAX_TRIES", "MemoryProducer"]

_EVENT_TYPES = {
    "success": "succeeded",
    "error": "failed",
    "timeout": "failed",
    "aborted": "aborted",
}


def _text(value: object) -> str:
    return "" if value is None else str(value)


# ---------------------------------------------------------------------------- core


class MemoryProducer(MemoryObservations, MemoryAdmin, MemoryDeadLetters, Producer):
    """Every client operation, on a :class:`MemoryStore` instead of Redis.

    The worker-side transitions (start, finish, retry, dead-letter) are plain methods, used
    by the twins' state setters and by eager execution of registered functions.
    """

    def __init__(
        self,
        store: MemoryStore,
        *,
        functions: Mapping[str, Any] | None = None,  # name -> jobwire.worker.Function
        eager: bool = False,
        ctx: Mapping[str, Any] | None = None,
        max_tries: int = DEFAULT_MAX_TRIES,
        **core_options: Any,
    ) -> None:
        super().__init__(**core_options)
        # one process, no slots: a sharded queue is one queue here (the option is checked)
        self.partitions = Partitions()
        self.store = store
        self.functions = dict(functions or {})
        self.eager = eager
        self.ctx = dict(ctx or {})
        self.max_tries = max_tries

    # ---------------------------------------------------------------- helpers

    def _refreshed(self, queue_name: str | None, now: int | None = None) -> tuple[str, MemoryQueue]:
        """A queue's name and state, brought up to date (call with the lock held)."""
        name = self.keys(queue_name).queue
        queue = self.store._queue(name)
        now = now_ms() if now is None else now
        for job_id, job in list(queue.jobs.items()):
            if job.state != "active" and job.expires_ms is not None and job.expires_ms <= now:
                del queue.jobs[job_id]  # as the job hash expires in Redis
        due = sorted(
            (job.due_ms or 0, job_id)
            for job_id, job in queue.jobs.items()
            if job.state == "deferred" and (job.due_ms or 0) <= now
        )
        for _, job_id in due:  # what a worker's promotion does within milliseconds
            job = queue.jobs[job_id]
            job.state, job.due_ms, job.order = "queued", None, self.store._next()
        for job_id, kept in list(queue.results.items()):
            if kept.expires_ms is not None and kept.expires_ms <= now:
                del queue.results[job_id]
        for job_id, (_, expires) in list(queue.failed.items()):
            if expires is not None and expires <= now:
                del queue.failed[job_id]
        return name, queue

    def _job(self, queue_name: str | None, job_id: str) -> tuple[str, MemoryQueue, StoredJob]:
        name, queue = self._refreshed(queue_name)
        job = queue.jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"job {job_id!r} is not queued or running in queue {name!r}")
        return name, queue, job

    def _waiting(self, queue_name: str | None) -> tuple[list[StoredJob], list[StoredJob]]:
        """A queue's queued jobs in order and its deferred ones by start time (locked)."""
        jobs = self._refreshed(queue_name)[1].jobs.values()
        queued = sorted((j for j in jobs if j.state == "queued"), key=lambda j: j.order)
        deferred = sorted(
            (j for j in jobs if j.state == "deferred"), key=lambda j: (j.due_ms or 0, j.header.id)
        )
        return queued, deferred

    def _result(
        self,
        job: StoredJob,
        outcome: str,
        *,
        value: Any = None,
        error: ErrorRecord | None = None,
        exc: BaseException | None = None,
        now: int,
    ) -> ResultEnvelope:
        header = job.header
        return ResultEnvelope.of(
            header,
            job_try=try_number(header.job_try, job.tries),
            outcome=outcome,
            started_ms=job.started_ms or now,
            finished_ms=now,
            worker=job.worker or "",
            value=value,
            error=error,
            exception=exc,
        )

    def _add(self, job: Prepared, now: int, once: tuple[str, int] | None = None) -> bool:
        """Store one prepared job unless its id is taken (the enqueue script's rule)."""
        name, queue = self._refreshed(job.keys.queue, now)
        if job.job_id in queue.jobs:
            return False
        if self.unique_while_result_kept and job.job_id in queue.results:
            return False
        if once is not None:
            marker = f"{name}\0{once[0]}"
            if self.store._once.get(marker, 0) > now:
                return False
            self.store._once[marker] = now + once[1]
        header = self.codec.read_job_header(job.data)
        queue.failed.pop(job.job_id, None)
        state = "deferred" if job.due_ms is not None else "queued"
        queue.jobs[job.job_id] = StoredJob(
            job.data, header, state, job.due_ms, job.expires_ms, self.store._next()
        )
        queue.enqueued.append((self.store._next(), job.data, STATUS[state]))
        self._emit(queue, "enqueued", job.job_id, header.function, header.job_try,
                   info=_text(job.due_ms))  # fmt: skip
        self.store._known.add(name)
        self.store._changed()
        return True

    # ---------------------------------------------------------------- enqueue

    def enqueue(self, spec: JobSpec, once: tuple[str, int] | None = None) -> Gen[JobRef | None]:
        """Enqueue one job (eager mode: and run it)."""
        now = now_ms()
        job = self.prepare(spec, now)
        with self.store._cond:
            added = self._add(job, now, once)
        if not added:
            return None
        if self.eager and not self.paused(job.keys.queue):
            yield from run_job(self, job.job_id, job.keys.queue)
        return (job.job_id, job.keys.queue)

    def enqueue_many(self, specs: Iterable[JobSpec]) -> Gen[list[JobRef | None]]:
        """Enqueue many jobs (eager mode: and run them, in order)."""
        now = now_ms()
        jobs = [self.prepare(spec, now) for spec in specs]  # all checked before any is kept
        with self.store._cond:
            added = [self._add(job, now) for job in jobs]
        refs: list[JobRef | None] = []
        for job, ok in zip(jobs, added, strict=True):
            if ok and self.eager and not self.paused(job.keys.queue):
                yield from run_job(self, job.job_id, job.keys.queue)
            refs.append((job.job_id, job.keys.queue) if ok else None)
        return refs

    # -------------------------------------------------------------- job state

    @immediate
    def status(self, job_id: str, queue_name: str) -> JobStatus:
        """Where the job is in its life."""
        with self.store._cond:
            _, queue = self._refreshed(queue_name)
            job = queue.jobs.get(job_id)
            if job is not None:
                return STATUS[job.state]
            return JobStatus.COMPLETE if job_id in queue.results else JobStatus.NOT_FOUND

    @immediate
    def outcome(self, job_id: str, queue_name: str) -> str | None:
        """How the job ended; None while it is waiting or running, or when nothing is kept."""
        with self.store._cond:
            _, queue = self._refreshed(queue_name)
            kept = queue.results.get(job_id)
            if job_id in queue.jobs or kept is None:
                return None
            latest = kept.entries[0]
        return self._decode_result(latest).outcome

    @immediate
    def info(self, job_id: str, queue_name: str) -> JobInfo | None:
        """The job as stored while deferred, queued or running; None otherwise."""
        with self.store._cond:
            job = self._refreshed(queue_name)[1].jobs.get(job_id)
            if job is None:
                return None
            state, tries, worker, started = job.state, job.tries, job.worker, job.started_ms
        header = self._decode_job(job.data)
        return JobInfo.from_stored(
            header, STATUS[state], tries=tries, worker=worker, started_ms=started
        )

    def _kept(self, job_id: str, queue_name: str | None) -> list[bytes]:
        with self.store._cond:
            kept = self._refreshed(queue_name)[1].results.get(job_id)
            return list(kept.entries) if kept else []

    @immediate
    def result_info(self, job_id: str, queue_name: str) -> JobResult | None:
        """The latest execution's result, if kept."""
        kept = self._kept(job_id, queue_name)
        return self._decode_result(kept[0]) if kept else None

    @immediate
    def results(self, job_id: str, queue_name: str) -> list[JobResult]:
        """Results of the latest executions (up to 10), newest first."""
        return [self._decode_result(data) for data in self._kept(job_id, queue_name)]

    def wait_final(self, job_id: str, queue_name: str, timeout: float | None) -> Gen[JobResult]:
        """Block until the job has a final result: woken by the write, never polling."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.store._cond:
                queue = self._refreshed(queue_name)[1]
                job = queue.jobs.get(job_id)
                if job is None:
                    kept = queue.results.get(job_id)
                    if kept is None:
                        elsewhere = [
                            n
                            for n, q in sorted(self.store._queues.items())
                            if n != queue_name and (job_id in q.jobs or job_id in q.results)
                        ]
                        raise result_not_found(job_id, queue_name, elsewhere)
                    latest = kept.entries[0]
                    break
                if timeout is None and job.state != "active" and not self.eager:
                    # a unit test would hang here: nothing in this process will start it
                    raise WaitTimeout(
                        f"job {job_id!r} is {job.state} in the in-memory twin and nothing "
                        "will run it, so result() would wait forever: run it with "
                        "client.run_jobs(), enqueue with eager=True, or pass timeout= to wait "
                        "for another thread or task that sets its result",
                        job_id=job_id,
                    )
                version = self.store._version
                # nothing wakes a waiter when a waiting job expires: wake up for it
                until_expiry = (
                    None
                    if job.state == "active" or job.expires_ms is None
                    else max(0.0, (job.expires_ms - now_ms()) / 1000)
                )
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(f"no result for job {job_id!r} within {timeout}s", job_id=job_id)
            limits = [t for t in (remaining, until_expiry) if t is not None]
            yield Wait(self.store, version, min(limits) if limits else None)
        return self._decode_result(latest)

    def abort(self, job_id: str, queue_name: str, timeout: float | None) -> Gen[bool]:
        """Abort: a waiting job is removed; a running one is flagged and waited for."""
        now = now_ms()
        with self.store._cond:
            name, queue = self._refreshed(queue_name, now)
            job = queue.jobs.get(job_id)
            if job is None:
                return False
            if job.state == "active":
                job.abort = True
                self.store._changed()
                running = True
            else:
                running = False
                del queue.jobs[job_id]
                result = self.codec.encode_result(self._aborted_result(job_id, name, job.data))
                queue.keep_result(job_id, result, self.keep_result_ms / 1000, now)
                queue.keep_failed(job_id, job.data, "aborted", self.keep_result_ms / 1000, now)
                function = job.header.function
                self._emit(queue, "aborted", job_id, function, info="aborted before it started")
                self._tally(queue, function, "aborted", None)
                self.store._changed()
        if not running:
            return True
        final = yield from self.wait_final(job_id, queue_name, timeout)
        return final.outcome == "aborted"

    # ---------------------------------------------------------------- listings

    @immediate
    def queued_jobs(self, queue_name: str | None, limit: int) -> list[JobInfo]:
        """Queued jobs in order, then deferred ones by start time (``limit`` of each)."""
        with self.store._cond:
            queued, deferred = self._waiting(queue_name)
            rows = [(j.data, STATUS[j.state]) for j in (*queued[:limit], *deferred[:limit])]
        return [JobInfo.from_stored(self._decode_job(data), status) for data, status in rows]

    def _counts(self, queue_name: str | None) -> dict[str, int]:
        with self.store._cond:
            queue = self._refreshed(queue_name)[1]
            states = [job.state for job in queue.jobs.values()]
            return {
                "queued": states.count("queued"),
                "deferred": states.count("deferred"),
                "in_progress": states.count("active"),
                "dead_letters": len(queue.dead),
            }

    @immediate
    def queue_size(self, queue_name: str | None) -> int:
        """Number of jobs waiting in a queue (queued and deferred; not running)."""
        counts = self._counts(queue_name)
        return counts["queued"] + counts["deferred"]

    @immediate
    def queue_stats(self, queue_name: str | None) -> dict[str, int]:
        """Counts of a queue: queued, deferred, in_progress and dead_letters."""
        return self._counts(queue_name)

    @immediate
    def all_job_results(self) -> list[JobResult]:
        """The latest result of every job in every queue, newest first."""
        with self.store._cond:
            latest = [
                kept.entries[0]
                for name in list(self.store._queues)
                for kept in self._refreshed(name)[1].results.values()
            ]
        out: list[JobResult] = []
        for data in latest:
            try:
                out.append(self._decode_result(data))
            except DecodeError:
                continue  # as with Redis: a result this client cannot read is left out
        out.sort(key=lambda r: r.finish_time, reverse=True)
        return out

    @immediate
    def known_queues(self) -> list[str]:
        """Names of the queues that have been enqueued to."""
        with self.store._cond:
            return sorted(self.store._known)

    @immediate
    def register_queues(self, names: Sequence[str]) -> None:
        """Record queue names for listings."""
        with self.store._cond:
            self.store._known.update(check_name("queue name", n) for n in names)

    @immediate
    def health_records(self, queue_name: str | None) -> dict[str, bytes]:
        """No worker runs against a twin: there are no health records."""
        return {}

    @immediate
    def ping(self) -> bool:
        """A twin always answers."""
        return True

    # ------------------------------------------------- worker side (state setters)

    def start(self, job_id: str, queue_name: str | None, worker: str) -> None:
        """Move a waiting job to in progress, as a worker taking it does."""
        now = now_ms()
        with self.store._cond:
            _, queue, job = self._job(queue_name, job_id)
            if job.state == "active":
                raise InvalidArgument(f"job {job_id!r} is already in progress")
            job.state, job.due_ms = "active", None
            job.tries += 1
            job.worker, job.started_ms, job.abort = worker, now, False
            job_try = try_number(job.header.job_try, job.tries)
            self._emit(queue, "started", job_id, job.header.function, job_try, worker)
            self.store._changed()

    def finish(
        self,
        job_id: str,
        queue_name: str | None,
        outcome: str,
        *,
        value: Any = None,
        exc: BaseException | None = None,
        error: ErrorRecord | None = None,
        retry_in: float | None = None,
        keep: float | None = CLIENT_KEEP,
        worker: str = WORKER_NAME,
    ) -> bool:
        """End the current execution of a job (starting it first if it was waiting).

        With ``retry_in`` (seconds) the job goes back to its queue for another try, due
        then; otherwise its result is final. ``keep``: seconds to keep the result (None:
        forever; the default: the client's ``keep_result``). Returns True when the job was
        re-queued.
        """
        if keep == CLIENT_KEEP:
            keep = self.keep_result_ms / 1000
        with self.store._cond:
            _, queue, job = self._job(queue_name, job_id)
            if job.state != "active":
                self.start(job_id, queue_name, worker)
            now = now_ms()
            if exc is not None and error is None:
                error = ErrorRecord.from_exception(exc)
            result = self._result(job, outcome, value=value, error=error, exc=exc, now=now)
            data, result = encode_result(self.codec, result)
            queue.keep_result(job_id, data, keep, now)
            self._ended(queue, result, retry_in is not None)
            job.worker = job.started_ms = None
            job.progress = None
            if retry_in is None:
                del queue.jobs[job_id]
                queue.keep_failed(job_id, job.data, outcome, keep, now)
            elif retry_in > 0:
                job.state, job.due_ms = "deferred", now + int(retry_in * 1000)
            else:
                job.state, job.order = "queued", self.store._next()
            self.store._changed()
            return retry_in is not None

    def dead_letter(self, job_id: str, queue_name: str | None, reason: str, message: str) -> str:
        """Move a job to the dead letters with a reason, as a worker that cannot run it does.

        A waiting client gets a failed result naming the reason. Returns the entry id.
        """
        now = now_ms()
        with self.store._cond:
            name, queue, job = self._job(queue_name, job_id)
            del queue.jobs[job_id]
            entry_id = f"{now}-{self.store._next()}"
            queue.dead[entry_id] = DeadLetter(
                entry_id=entry_id,
                queue_name=name,
                job_id=job_id,
                reason=reason,
                message=message,
                data=job.data,
                time=datetime.fromtimestamp(now / 1000, tz=timezone.utc),
            )
            while len(queue.dead) > DEAD_CAP:
                del queue.dead[next(iter(queue.dead))]
            result = dead_letter_result(job.header, reason, message, job.worker or WORKER_NAME, now)
            function = job.header.function
            self._emit(queue, "dead_lettered", job_id, function, job.header.job_try, result.worker,
                       info=f"{reason}: {message[:200]}")  # fmt: skip
            self._tally(queue, function, "dead_lettered", None)
            queue.keep_result(
                job_id, self.codec.encode_result(result), self.keep_result_ms / 1000, now
            )
            self.store._changed()
            return entry_id

    def _ended(self, queue: MemoryQueue, result: ResultEnvelope, retried: bool) -> None:
        """The event and stats of an execution's end (as the finish and retry scripts)."""
        ms = max(0, result.finished_ms - result.started_ms)
        error = "" if result.error is None else f"{result.error.type}: {result.error.message}"
        outcome = "retried" if retried else str(result.outcome)
        kind = "retried" if retried else _EVENT_TYPES.get(outcome, "failed")
        self._emit(queue, kind, result.id, result.function, result.job_try, result.worker, ms,
                   error[:200])  # fmt: skip
        self._tally(queue, result.function, outcome, ms)

    def abort_requested(self, job_id: str, queue_name: str | None) -> bool:
        """True when a client asked to abort this running job."""
        with self.store._cond:
            job = self._refreshed(queue_name)[1].jobs.get(job_id)
            return bool(job is not None and job.abort)

    def enqueued_jobs(self, queue_name: str | None) -> list[JobInfo]:
        """Every job accepted so far by one queue (None: by every queue), as enqueued."""
        with self.store._cond:
            names = self.queue_names() if queue_name is None else [queue_name]
            rows = sorted(row for name in names for row in self._refreshed(name)[1].enqueued)
        return [JobInfo.from_stored(self._decode_job(data), status) for _, data, status in rows]

    def queue_names(self) -> list[str]:
        """The queues of the store that hold or held anything, the default one first."""
        with self.store._cond:
            others = sorted(n for n in self.store._queues if n != self.queue_name)
        return [self.queue_name, *others]

    def raw(self, job_id: str, queue_name: str | None) -> tuple[bytes, int]:
        """A waiting or running job's stored bytes and its start count."""
        with self.store._cond:
            _, _, job = self._job(queue_name, job_id)
            return job.data, job.tries
