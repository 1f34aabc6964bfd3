"""The consumer side of the protocol: what a worker says to Redis, written once.

A :class:`Consumer` is one worker's identity on one queue. Its generators fetch batches of
jobs (taking a lease on each), renew leases, record results, retry, promote deferred jobs,
reclaim jobs whose lease ran out, and dead-letter what cannot run. The worker drives them
with the async driver; tests can drive them with either.

Leases are the stream's pending-entries list: a delivered entry stays pending, owned by the
consumer, until it is acknowledged. A consumer renews its entries' idle time (``renew``);
any consumer may claim entries idle for longer than the lease (``reclaim``), and the job
runs again with its try number increased.

Everything read from Redis is untrusted: a malformed entry or job key never makes a
generator raise or a script fail for its batch. It comes back alone as a :class:`Delivery`
with ``problem`` set, still leased to this consumer, for the worker to dead-letter.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any, Final

from jobwire.wire import ResultEnvelope

from . import defaults
from .errors import RedisCommandError
from .keys import CONSUMER_GROUP, QueueKeys
from .models import Delivery
from .producer import Producer, now_ms
from .protocol import Command, Gen, call, call_script, pipeline, script_command
from .scripts import (
    DEAD_LETTER,
    FINISH,
    HAND_BACK,
    PROGRESS,
    PROMOTE,
    RENEW,
    REQUEUE,
    RETRY,
)
from .start_scripts import FETCH, RECLAIM, START, START_DELIVERED
from .stats import bucket_index, duration_ms

__all__ = [
    "ABORT_REQUESTED",
    "DEFAULT_DEAD_LETTER_CAP",
    "DEFAULT_LEASE",
    "GRACE_OVER",
    "HANDED_BACK",
    "LOST",
    "NOT_OURS",
    "RENEWED",
    "SETTLED",
    "Consumer",
]

DEFAULT_LEASE: Final = defaults.LEASE
DEFAULT_DEAD_LETTER_CAP: Final = defaults.DEAD_LETTER_CAP

# what ``renew`` says of each delivery
#: The lease was renewed.
RENEWED: Final = 1
#: The lease was renewed, and a client asked to abort the job.
ABORT_REQUESTED: Final = 2
#: The lease ran out and another consumer took the job over.
LOST: Final = 0
#: The entry is pending for no one: the job was settled meanwhile (finished, retried,
#: aborted, dead-lettered): a race with the job's own end, not a loss.
SETTLED: Final = 3

# what ``hand_back`` says
#: The job is deferred again, to be run by a worker that knows its function.
HANDED_BACK: Final = 1
#: Handed back for longer than the grace period: the entry is still leased to this
#: consumer, for the caller to dead-letter it.
GRACE_OVER: Final = 2
#: The delivery is no longer this consumer's (settled, or taken over): nothing was done.
NOT_OURS: Final = 0

# 2^53 ms: the latest due time that means anything (scripts dead-letter later ones)
_MAX_DUE_MS: Final = 2**53


class Consumer:
    """One worker's consumer name on one queue, with the generators it runs.

    ``clock`` gives the time in ms since the epoch for every time the consumer writes (a
    worker passes one corrected by its measured offset to Redis's clock).
    """

    def __init__(
        self,
        core: Producer,
        name: str,
        queue_name: str | None = None,
        *,
        lease: float = DEFAULT_LEASE,
        dead_letter_cap: int = DEFAULT_DEAD_LETTER_CAP,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.core = core
        self.clock = clock
        self.name = name
        # tells this process's starts from those of an earlier process with the same name
        self.session = os.urandom(6).hex()
        self.keys: QueueKeys = core.keys(queue_name)
        self.lease_ms = int(lease * 1000)
        self.dead_letter_cap = dead_letter_cap
        #: the event stream's cap; 0 writes no events or stats (the core's setting)
        self.max_events = core.max_events
        #: the highest stream entry id this process was given (``start_delivered``'s floor)
        self.given: tuple[int, int] | None = None

    def _deliveries(self, rows: Sequence[Any]) -> list[Delivery]:
        """Deliveries from start rows ``[entry, job_id, data, tries, problem]``."""
        queue = self.keys.queue
        out = []
        for entry, jid, data, tries, problem in rows:
            job_id, utf8 = _text(jid)
            code = _text(problem)[0] or (None if utf8 else "bad_job_id")
            entry_id = _text(entry)[0]
            out.append(Delivery(entry_id, job_id, data, int(tries), queue, code))
        # every script returns its rows in stream order: the last has the batch's highest id
        given = _entry_id(out[-1].entry_id) if out else None
        if given is not None and (self.given is None or given > self.given):
            self.given = given
        return out

    def ensure_group(self) -> Gen[None]:
        """Create the queue's stream and consumer group if they do not exist yet."""
        for stream in (self.keys.stream, self.keys.wake):
            try:
                yield Command(("XGROUP", "CREATE", stream, CONSUMER_GROUP, "0", "MKSTREAM"))
            except RedisCommandError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def fetch_and_next_due(self, count: int) -> Gen[tuple[list[Delivery], int | None]]:
        """Promote due deferred jobs, take up to ``count`` ready ones (one round trip).

        Also returns when the next deferred job is due (ms), or None. Deferred jobs due at
        no valid time are moved to the dead letters (reason ``bad_due_time``).
        """
        keys = self.keys
        next_due, *rows = yield from call_script(
            FETCH,
            (keys.stream, keys.deferred, keys.dead),
            (CONSUMER_GROUP, self.name, self.session, keys.base, self.clock(), count,
             self.dead_letter_cap, self.max_events),
        )  # fmt: skip
        return self._deliveries(rows), _due(next_due)

    def read(self, count: int, block: float) -> Gen[list[Delivery]]:
        """Wait up to ``block`` seconds for ready jobs (or a deferred-job wake-up), take them.

        Returns an empty list on time-out or when only a wake-up marker arrived: the caller
        then promotes deferred jobs and reads again. Once this process has been given an
        entry, the blocking read and ``start_delivered`` go in one pipeline, so what the read
        gives is started without a second round trip; before that, the read's entries are
        started by ``start`` after it.
        """
        keys = self.keys
        read = Command(
            (
                "XREADGROUP", "GROUP", CONSUMER_GROUP, self.name, "COUNT", count,
                "BLOCK", max(1, int(block * 1000)), "STREAMS", keys.stream, keys.wake, ">", ">",
            )
        )  # fmt: skip
        if self.given is not None:
            # the usual case: the read and the start of what it gave in one round trip. Before
            # this process was given any entry, entries pending for its name may be an earlier
            # process's (same name, after a restart): those wait for their lease to lapse.
            after = "{}-{}".format(*self.given)
            start = script_command(
                START_DELIVERED,
                (keys.stream, keys.wake),
                (CONSUMER_GROUP, self.name, self.session, keys.base, self.clock(),
                 self.max_events, after, count),
            )  # fmt: skip
            replies = yield from pipeline([read, start])
            return self._deliveries(replies[1][1:])  # (after the count of wake markers)
        reply = yield read
        if not reply:
            return []
        jobs: list[Any] = []
        wakes: list[Any] = []
        for stream, entries in reply:
            target = jobs if stream in (keys.stream, keys.stream.encode()) else wakes
            target.extend(entries)
        commands = [
            Command(("XACK", keys.wake, CONSUMER_GROUP, *[e for e, _ in wakes])),
            Command(("XDEL", keys.wake, *[e for e, _ in wakes])),
        ] if wakes else []  # fmt: skip
        if jobs:
            argv: list[Any] = [CONSUMER_GROUP, self.name, self.session, keys.base, self.clock(),
                               self.max_events]  # fmt: skip
            for entry, fields in jobs:
                argv += [entry, (fields or {}).get(b"job", b"")]
            commands.append(script_command(START, (keys.stream,), argv))
        if not commands:
            return []
        if not wakes:  # the usual case: one command, without a pipeline's overhead
            return self._deliveries((yield from call(commands[0])))
        replies = yield from pipeline(commands)
        return self._deliveries(replies[-1]) if jobs else []

    def renew(self, deliveries: Sequence[Delivery]) -> Gen[list[int]]:
        """Renew the leases of running jobs, in one round trip.

        Returns per delivery: ``RENEWED``, ``ABORT_REQUESTED`` (renewed, but a client asked
        to abort it), ``LOST`` (the lease ran out and another consumer took the job) or
        ``SETTLED`` (pending for no one: the job was finished, retried, aborted or
        dead-lettered meanwhile). Works even when Redis is out of memory.
        """
        if not deliveries:
            return []
        argv: list[Any] = [CONSUMER_GROUP, self.name, self.keys.base]
        for d in deliveries:
            argv += [d.entry_id, d.job_id]
        replies = yield from call_script(RENEW, (self.keys.stream,), argv)
        return [int(r) for r in replies]

    def finish_encoded(
        self,
        items: Sequence[tuple[Delivery, bytes, float | None]],
        results: Sequence[ResultEnvelope | None] = (),
    ) -> Gen[None]:
        """Record many final results (already encoded) in one script call.

        ``results``, the envelopes those bytes hold, give each job's event and stats (none
        are written for an item without one) and its outcome: a job that did not succeed
        keeps its envelope for a retry (``Job.retry``) as long as its results.
        """
        argv: list[Any] = [CONSUMER_GROUP, self.keys.base, self.name, self.clock(),
                           self.max_events]  # fmt: skip
        ends = list(results) + [None] * (len(items) - len(results))
        for (d, data, keep), result in zip(items, ends, strict=True):
            argv += [d.job_id, d.entry_id, data, _keep_ms(keep)]
            argv += _ended(result) if result else _NOT_ENDED
        yield from call_script(FINISH, (self.keys.stream,), argv)

    def retry(
        self,
        delivery: Delivery,
        result: ResultEnvelope,
        keep_result: float | None,
        defer: float | None,
    ) -> Gen[bool]:
        """Record a failed attempt in the history and queue the job again.

        It waits ``defer`` seconds first, if given. False when the job is no longer this
        delivery's to retry (it was aborted, or re-enqueued by someone else).
        """
        now = self.clock()
        due = "" if not defer else now + int(defer * 1000)
        keys = self.keys
        fn, job_try, _, ms, bucket, error = _ended(result)
        reply = yield from call_script(
            RETRY,
            (keys.stream, keys.deferred, keys.wake),
            (CONSUMER_GROUP, keys.base, delivery.job_id, delivery.entry_id,
             self.core.codec.encode_result(result), _keep_ms(keep_result), due, self.name, now,
             self.max_events, fn, job_try, ms, bucket, error),
        )  # fmt: skip
        return bool(reply)

    def requeue(self, delivery: Delivery) -> Gen[bool]:
        """Put a job that has not finished back on the queue (graceful shutdown).

        The interrupted start is not counted as a try. False if the job is no longer this
        delivery's (its lease was lost, or it was aborted).
        """
        reply = yield from call_script(
            REQUEUE,
            (self.keys.stream,),
            (CONSUMER_GROUP, self.keys.base, delivery.job_id, delivery.entry_id),
        )
        return bool(reply)

    def write_health(self, record: bytes, ttl: float) -> Gen[None]:
        """Store this worker's health record, expiring after ``ttl`` seconds."""
        yield Command(("SET", self.keys.health(self.name), record, "PX", max(1, int(ttl * 1000))))

    def promote(self, limit: int = 1000) -> Gen[tuple[int, int | None]]:
        """Move due deferred jobs to the ready stream.

        Returns how many moved and when the next deferred job is due (ms), or None. Members
        due at no valid time (beyond 2^53 ms) are moved to the dead letters (reason
        ``bad_due_time``); due ones whose job key is not a hash are too (``wrong_type``), and
        those whose job is gone are dropped.
        """
        keys = self.keys
        moved, next_due = yield from call_script(
            PROMOTE,
            (keys.stream, keys.deferred, keys.dead),
            (keys.base, self.clock(), limit, self.dead_letter_cap),
        )
        return int(moved), _due(next_due)

    def reclaim(self, count: int) -> Gen[list[Delivery]]:
        """Take over jobs whose lease ran out (their worker died or hung); they start again."""
        if count <= 0:
            return []
        keys = self.keys
        argv = (CONSUMER_GROUP, self.name, self.session, keys.base, self.clock(), self.lease_ms,
                count, self.max_events)  # fmt: skip
        rows = yield from call_script(RECLAIM, (keys.stream,), argv)
        return self._deliveries(rows)

    def hand_back(
        self, delivery: Delivery, base_delay: float, max_delay: float, grace: float
    ) -> Gen[int]:
        """Give back a job this worker cannot run (an unknown function, in a rolling deploy).

        The job is deferred again, not counted as a try, for a worker that knows it: after
        ``base_delay`` seconds, doubling at each hand-back up to ``max_delay``. Returns
        ``HANDED_BACK``; ``GRACE_OVER`` once the job has been handed back for ``grace``
        seconds (nothing changed: dead-letter it with this delivery); ``NOT_OURS`` when the
        delivery is no longer this consumer's.
        """
        keys = self.keys
        reply = yield from call_script(
            HAND_BACK,
            (keys.stream, keys.deferred, keys.wake),
            (CONSUMER_GROUP, self.name, keys.base, delivery.job_id, delivery.entry_id,
             self.clock(), _ms(base_delay), _ms(max_delay), _ms(grace)),
        )  # fmt: skip
        return int(reply)

    def dead_letter(
        self,
        *,
        reason: str,
        message: str,
        data: bytes,
        delivery: Delivery | None = None,
        job_id: str | None = None,
        result: ResultEnvelope | None = None,
        keep_result: float | None = defaults.KEEP_RESULT,
    ) -> Gen[str]:
        """Move a message that cannot run to the dead-letter stream, with the reason.

        When the job id is known its state is removed and, with ``result``, a failed result
        is stored (kept ``keep_result`` seconds) so that a client waiting for it learns why;
        only a real job gets one, not a stray entry or a key of the wrong type (that key is
        deleted). Returns the entry id ('' when the delivery was settled already).
        """
        keys = self.keys
        encoded = b"" if result is None else self.core.codec.encode_result(result)
        entry = yield from call_script(
            DEAD_LETTER,
            (keys.stream, keys.dead),
            (CONSUMER_GROUP, keys.base, delivery.entry_id if delivery else "",
             job_id or (delivery.job_id if delivery else ""), reason, message, data, self.clock(),
             self.dead_letter_cap, encoded, _keep_ms(keep_result), self.name, self.max_events,
             result.function if result else "", result.job_try if result else ""),
        )  # fmt: skip
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    def report_progress(self, reports: Sequence[tuple[Delivery, str, int, bytes]]) -> Gen[int]:
        """Store the latest progress of running jobs and emit their progress events.

        ``reports`` are (delivery, function, try, progress JSON); a job that is no longer
        this delivery's (it ended meanwhile) is skipped. Returns how many were stored.
        """
        argv: list[Any] = [self.keys.base, self.name, self.max_events]
        for d, function, job_try, value in reports:
            argv += [d.job_id, d.entry_id, function, job_try, value]
        return int((yield from call_script(PROGRESS, (self.keys.lifecycle,), argv)))


_NOT_ENDED: Final = ("", "", "", "", "", "")


def _ended(result: ResultEnvelope) -> tuple[str, int, str, int, int | str, str]:
    """What an execution's event and stats say of it.

    Its function, try, outcome, duration (ms), histogram bucket and error (``Type:
    message``, cut at 200 characters).
    """
    seconds = max(0, result.finished_ms - result.started_ms) / 1000
    error = "" if result.error is None else f"{result.error.type}: {result.error.message}"[:200]
    return (result.function, result.job_try, str(result.outcome), duration_ms(seconds),
            bucket_index(seconds), error)  # fmt: skip


def _due(score: object) -> int | None:
    """When the next deferred job is due, from a script's reply (``-1``: none).

    Never raises: a score that is no number is None, others are clamped to [0, 2^53].
    """
    if score in (b"-1", "-1", -1) or not isinstance(score, (bytes, str, int, float)):
        return None
    try:
        due = float(score)
    except ValueError:
        return None
    if math.isnan(due):
        return None
    return int(min(max(due, 0.0), _MAX_DUE_MS))


def _text(value: object) -> tuple[str, bool]:
    """A reply value as text, and whether it was valid UTF-8 (else backslash-escaped)."""
    if isinstance(value, bytes):
        try:
            return value.decode(), True
        except UnicodeDecodeError:
            return value.decode(errors="backslashreplace"), False
    return str(value), True


def _ms(seconds: float) -> int:
    """Seconds as whole ms for a script, clamped to [0, 2^53] (inf is the longest)."""
    return 0 if math.isnan(seconds) else int(min(max(seconds * 1000, 0), _MAX_DUE_MS))


def _entry_id(entry: str) -> tuple[int, int] | None:
    """A stream entry id as a pair of integers (None if it is not one)."""
    ms, _, seq = entry.partition("-")
    if not (ms.isdigit() and seq.isdigit()):
        return None
    return int(ms), int(seq)


def _keep_ms(keep_result: float | None) -> int:
    """None keeps results forever (-1 to the scripts); 0 keeps none."""
    return -1 if keep_result is None else int(keep_result * 1000)
