"""Lifecycle events, progress and stats: their values and how clients read them.

Each queue has a capped stream of its jobs' lifecycle events (``P:{Q}:lifecycle``, see
wire/SPEC.md, section 12.7) that workers and clients write inside the calls they make
anyway. This module holds the typed values (:class:`Event`, :class:`Progress`), the parsing
of what Redis holds (untrusted: a malformed entry is skipped or its odd fields neutralised,
never an exception), and the reading operations, written once as generators
(:class:`EventReads`, a part of :class:`~jobwire.producer.Producer` that the in-memory twin
overrides). :func:`follow` and :func:`follow_async` turn the reads into the iterators of
``client.events()``.
"""

from __future__ import annotations

import enum
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final

import orjson

from jobwire.wire import MAX_MS

from . import stats as _stats
from .errors import InvalidArgument
from .protocol import Command, Gen, call_script, pipeline
from .routing import QueueRouting
from .scripts import JOB_EVENTS
from .stats import Resolution, Statistics
from .stored import text

if TYPE_CHECKING:
    from .keys import QueueKeys

__all__ = [
    "Event",
    "EventReads",
    "EventType",
    "Progress",
    "check_progress",
    "check_since",
    "follow",
    "follow_async",
    "parse_event",
    "parse_progress",
    "progress_json",
]

#: Longest message kept with a progress report (longer ones are cut).
MAX_PROGRESS_MESSAGE: Final = 1000
_BATCH: Final = 100
_ENTRY_ID: Final = re.compile(rb"^(\d{1,20})-(\d{1,20})$")
_NO_TIMEOUT: Final = float("inf")


class EventType(str, enum.Enum):
    """What happened to a job."""

    ENQUEUED = "enqueued"
    STARTED = "started"
    PROGRESS = "progress"
    RETRIED = "retried"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABORTED = "aborted"
    DEAD_LETTERED = "dead_lettered"


_TYPES: Final = {t.value.encode(): t for t in EventType}


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a running job says it is: ``value`` from 0.0 to 1.0, a message, when."""

    value: float
    message: str
    time: datetime


@dataclass(frozen=True, slots=True)
class Event:
    """One lifecycle event of a job, as read from its queue's event stream.

    ``id`` is the stream entry's id: pass it as ``since`` to resume after it. ``time`` is
    when Redis recorded it (the entry id's time). ``job_try`` is None for events of no
    try, ``worker`` None for events written by a client, ``duration`` (seconds) is set
    for the end of an execution (succeeded, failed, aborted while running, retried).
    ``info`` is the type's detail as stored: the error (``Type: message``) of a failed or
    retried try, ``reason: message`` of a dead letter, the progress as JSON, the due time
    (ms) of a deferred job.
    """

    id: str
    queue_name: str
    type: EventType
    job_id: str
    function: str
    job_try: int | None
    time: datetime
    worker: str | None
    duration: float | None
    info: str

    @property
    def progress(self) -> Progress | None:
        """The progress a ``progress`` event reports."""
        return parse_progress(self.info.encode()) if self.type is EventType.PROGRESS else None

    @property
    def error(self) -> str | None:
        """The error of a failed or retried try, the reason of a dead letter; else None."""
        kinds = (EventType.FAILED, EventType.RETRIED, EventType.DEAD_LETTERED)
        return (self.info or None) if self.type in kinds else None


def _number(raw: object, limit: int = MAX_MS) -> int | None:
    if isinstance(raw, bytes) and raw.isdigit() and len(raw) <= 20:
        value = int(raw)
        return value if value <= limit else None
    return None


def parse_event(queue: str, entry_id: object, fields: object) -> Event | None:
    """An event from a stream entry; None when it is no event (unknown type, bad id).

    Fields of the wrong shape are neutralised: text that is not UTF-8 keeps backslash
    escapes, a try or a duration that is no number in range is None.
    """
    raw_id = entry_id.encode() if isinstance(entry_id, str) else entry_id
    if not isinstance(raw_id, bytes) or not isinstance(fields, Mapping):
        return None
    match = _ENTRY_ID.match(raw_id)
    kind = _TYPES.get(fields.get(b"type", b""))
    if match is None or kind is None:
        return None
    ms = min(int(match.group(1)), MAX_MS)

    def str_field(name: bytes) -> str:
        value = fields.get(name, b"")
        return text(value)[: MAX_PROGRESS_MESSAGE * 2] if isinstance(value, bytes) else ""

    job_try = _number(fields.get(b"try"), 2**31)
    duration = _number(fields.get(b"duration_ms"))
    return Event(
        id=raw_id.decode(),
        queue_name=queue,
        type=kind,
        job_id=str_field(b"job_id"),
        function=str_field(b"function"),
        job_try=job_try if job_try else None,
        time=datetime.fromtimestamp(ms / 1000, tz=timezone.utc),
        worker=str_field(b"worker") or None,
        duration=None if duration is None else duration / 1000,
        info=str_field(b"info"),
    )


def parse_events(queue: str, entries: object) -> list[Event]:
    """Events from XRANGE-shaped entries, skipping anything malformed."""
    out: list[Event] = []
    if not isinstance(entries, (list, tuple)):
        return out
    for entry in entries:
        if isinstance(entry, (list, tuple)) and len(entry) == 2:
            fields = entry[1]
            if isinstance(fields, (list, tuple)):  # a script's reply: a flat list
                fields = dict(zip(fields[::2], fields[1::2], strict=False))
            event = parse_event(queue, entry[0], fields)
            if event is not None:
                out.append(event)
    return out


def check_progress(value: object, message: object = "") -> tuple[float, str]:
    """A progress report's value (0.0 to 1.0) and message, or InvalidArgument."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidArgument(f"progress is a number from 0.0 to 1.0, not {value!r:.40}")
    if not isinstance(message, str):
        raise InvalidArgument(f"a progress message is a string, not {message!r:.40}")
    return float(value), message[:MAX_PROGRESS_MESSAGE]


def progress_json(value: float, message: str, at_ms: int) -> bytes:
    """What the job hash's ``progress`` field holds."""
    return orjson.dumps({"value": value, "message": message, "at_ms": at_ms})


def parse_progress(raw: object) -> Progress | None:
    """A job's stored progress; None when there is none or it makes no sense."""
    if not isinstance(raw, bytes):
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    value, message, at = data.get("value"), data.get("message", ""), data.get("at_ms", 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if not isinstance(at, int) or not 0 <= at <= MAX_MS:
        at = 0
    return Progress(
        min(max(float(value), 0.0), 1.0),
        message[:MAX_PROGRESS_MESSAGE] if isinstance(message, str) else "",
        datetime.fromtimestamp(at / 1000, tz=timezone.utc),
    )


def check_since(since: object) -> str | None:
    """Where following starts: None (new events only), an event id, a time or a time ago.

    Returns the stream id to read after, or None for "the end of the stream now".
    """
    if since is None:
        return None
    if isinstance(since, timedelta):
        since = datetime.now(timezone.utc) - since
    if isinstance(since, datetime):
        ms = int(since.timestamp() * 1000)
        return "0-0" if ms <= 0 else f"{ms - 1}-18446744073709551615"
    if since == "0" or (isinstance(since, str) and _ENTRY_ID.match(since.encode())):
        return str(since)
    raise InvalidArgument(
        f"since is an event id, a datetime, a timedelta or None, not {since!r:.40}"
    )


class EventReads(QueueRouting):
    """The reading operations of events, progress and stats (a part of ``Producer``)."""

    max_block: float

    def _followed(self, queue_name: str | None) -> QueueKeys:
        """The one stream of events to follow: a sharded queue's are its partitions'."""
        every = self.queues_of(queue_name)
        if len(every) > 1:
            names = ", ".join(repr(k.queue) for k in every)
            raise InvalidArgument(
                f"queue {every[0].queue!r} is sharded: follow the events of each partition "
                f"({names})"
            )
        return every[0]

    def event_cursor(self, queue_name: str | None, since: str | None) -> Gen[str]:
        """The stream id to follow from: ``since``, or the newest event's id now."""
        if since is not None:
            return since
        keys = self._followed(queue_name)
        newest = yield Command(("XREVRANGE", keys.lifecycle, "+", "-", "COUNT", 1))
        if newest and isinstance(newest[0], (list, tuple)) and isinstance(newest[0][0], bytes):
            return text(newest[0][0])
        return "0-0"

    def read_events(
        self, queue_name: str | None, after: str, timeout: float | None
    ) -> Gen[tuple[list[Event], str]]:
        """Wait for events after ``after`` (up to ``timeout`` s; None: for ever).

        Returns them with the id to read after next; no events means the time ran out. No
        polling: XREAD BLOCK, in slices within the socket timeout (as ``wait_final``).
        """
        keys = self._followed(queue_name)
        deadline = _NO_TIMEOUT if timeout is None else time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            block = max(1, int(min(max(remaining, 0.0), self.max_block) * 1000))
            reply = yield Command(
                ("XREAD", "COUNT", _BATCH, "BLOCK", block, "STREAMS", keys.lifecycle, after)
            )
            entries = _xread_entries(reply)
            if entries:
                last = entries[-1][0]
                after = text(last) if isinstance(last, bytes) else str(last)
                events = parse_events(keys.queue, entries)
                if events:
                    return events, after
                continue  # only malformed entries: read on
            if time.monotonic() >= deadline:
                return [], after

    def job_events(self, job_id: str, queue_name: str) -> Gen[list[Event]]:
        """The job's events still in the stream, oldest first (its latest life)."""
        keys = self.job_keys(job_id, queue_name)
        entries = yield from call_script(JOB_EVENTS, (keys.lifecycle,), (job_id, 500))
        return list(reversed(parse_events(self.keys(queue_name).queue, entries)))

    def progress(self, job_id: str, queue_name: str) -> Gen[Progress | None]:
        """The latest progress the job reported while it waits or runs; else None."""
        raw = yield Command(("HGET", self.job_keys(job_id, queue_name).job(job_id), "progress"))
        return parse_progress(raw)

    def stats(
        self,
        queue_name: str | None,
        since: datetime | timedelta | None,
        function: str | None,
        resolution: Resolution,
    ) -> Gen[Statistics]:
        """The queue's stats per minute or hour from ``since`` to now (one round trip).

        A sharded queue's are the sums over its partitions.
        """
        every = self.queues_of(queue_name)
        now = int(time.time() * 1000)
        starts = _stats.bucket_starts(resolution, _stats.since_ms(since, resolution, now), now)
        replies: Sequence[Any] = []
        if starts:
            replies = yield from pipeline(
                [Command(("HGETALL", k.stats(resolution, s))) for s in starts for k in every]
            )
        n = len(every)
        hashes = [
            _stats.parse_stats_hash(_stats.summed(replies[i : i + n]), function)
            for i in range(0, len(replies), n)
        ]
        return _stats.statistics(every[0].queue, resolution, starts, hashes)


def _xread_entries(reply: object) -> list[Any]:
    """The entries of an XREAD reply for one stream (RESP2 list or RESP3 map alike)."""
    if isinstance(reply, Mapping):
        streams: Any = list(reply.values())
        return list(streams[0][0]) if streams and streams[0] else []
    if isinstance(reply, (list, tuple)) and reply and isinstance(reply[0], (list, tuple)):
        first = reply[0]
        return list(first[1]) if len(first) == 2 and isinstance(first[1], (list, tuple)) else []
    return []


def follow(
    run: Callable[[Gen[Any]], Any],
    reads: EventReads,
    queue: str,
    since: str | None,
    timeout: float | None,
) -> Iterator[Event]:
    """The blocking iterator of ``Client.events()``."""
    after: str = run(reads.event_cursor(queue, since))
    while True:
        events, after = run(reads.read_events(queue, after, timeout))
        if not events:
            return
        yield from events


async def follow_async(
    run: Callable[[Gen[Any]], Awaitable[Any]],
    reads: EventReads,
    queue: str,
    since: str | None,
    timeout: float | None,
) -> AsyncIterator[Event]:
    """The asynchronous iterator of ``AsyncClient.events()``."""
    after: str = await run(reads.event_cursor(queue, since))
    while True:
        events, after = await run(reads.read_events(queue, after, timeout))
        if not events:
            return
        for event in events:
            yield event
