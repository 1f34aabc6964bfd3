"""Everything the dashboard shows, one function per source: the only module that reads Redis.

Pages and the live stream call these functions and nothing else, so a source can change in
one place (counts from a stats stream, say, instead of the queue's keys). Each reads
through a :func:`safe_view` of the application's client, which never unpickles: a pickle
job shows its metadata and its size, never its arguments or its value.

Everything returned comes from Redis and is untrusted: the templates escape it all.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import msgpack
import orjson

from jobwire.aio import AsyncClient
from jobwire.errors import JobwireError
from jobwire.events import Event, Progress, parse_events, parse_progress
from jobwire.health import Assessment, assess, redis_time_ms
from jobwire.models import DeadLetter, JobInfo, JobResult
from jobwire.protocol import Command, Gen, pipeline
from jobwire.stats import FunctionStats
from jobwire.stored import job_fields
from jobwire.wire import DecodeError, FormatNotAccepted, WireError

__all__ = [
    "ChartSeries",
    "HistoryEntry",
    "JobDetail",
    "QueueCounts",
    "WorkerView",
    "args_json",
    "dead_letters",
    "event_cursor",
    "job_detail",
    "job_events",
    "jobs_page",
    "oldest_waiting",
    "preview",
    "progress_of",
    "queue_counts",
    "queue_names",
    "read_events",
    "recent_failures",
    "redis_now",
    "safe_view",
    "stats_series",
    "workers",
]

#: The most jobs a listing reads to page and search through (queued and deferred each).
LISTING_LIMIT = 10_000


def safe_view(client: AsyncClient) -> AsyncClient:
    """The client as the dashboard uses it: the same connection and options, minus pickle.

    Even when the application's client accepts pickle, the dashboard's reads never unpickle
    (arguments and values of pickle jobs are left out). Closing the view closes nothing.
    """
    if not isinstance(client, AsyncClient):
        raise JobwireError(f"the dashboard needs a jobwire.AsyncClient, not {client!r:.60}")
    view = copy.copy(client)
    core = copy.copy(client._core)
    codec = copy.copy(core.codec)
    codec.accept = frozenset(f for f in codec.accept if f != "pickle")
    core.codec = codec
    view._core = core
    view._owns_redis = False
    return view


# ------------------------------------------------------------------- queues


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """A queue's counts now, and whether it is paused."""

    name: str
    queued: int
    deferred: int
    in_progress: int
    dead_letters: int
    paused: bool

    def as_dict(self) -> dict[str, Any]:
        """The counts as the live stream sends them."""
        return {
            "queued": self.queued,
            "deferred": self.deferred,
            "in_progress": self.in_progress,
            "dead_letters": self.dead_letters,
            "paused": self.paused,
        }


async def queue_names(client: AsyncClient) -> list[str]:
    """Every known queue (those jobs were enqueued to, or a worker served)."""
    return await client.queues()


async def queue_counts(client: AsyncClient, name: str) -> QueueCounts:
    """One queue's counts (queued, deferred, running, dead letters) and its paused flag."""
    stats = await client.queue_stats(name)
    paused = await client.is_paused(name)
    return QueueCounts(
        name, stats["queued"], stats["deferred"], stats["in_progress"], stats["dead_letters"],
        paused,
    )  # fmt: skip


async def oldest_waiting(client: AsyncClient, name: str) -> datetime | None:
    """When the oldest queued job (the next to run) was enqueued; None when none waits."""
    try:
        first = await client.queued_jobs(name, 1)
    except (JobwireError, WireError):
        return None
    return first[0].enqueue_time if first and first[0].status.value == "queued" else None


async def redis_now(client: AsyncClient) -> datetime:
    """Redis's clock (what enqueue times and health records are judged against)."""
    ms = await client._run(redis_time_ms())
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


# -------------------------------------------------------------------- stats


@dataclass(frozen=True, slots=True)
class ChartSeries:
    """Jobs finished per minute by outcome, and duration percentiles, for the charts.

    ``t`` holds each minute's start (Unix seconds); the other lists one value per minute:
    ``success``, ``failed`` (error, timeout or aborted), ``retried``, ``dead_lettered``, and
    ``p50``/``p95`` (seconds; None for a minute without executions).
    """

    t: list[int]
    success: list[int]
    failed: list[int]
    retried: list[int]
    dead_lettered: list[int]
    p50: list[float | None]
    p95: list[float | None]

    def as_dict(self) -> dict[str, Any]:
        """The series as the page's script reads them."""
        return {
            "t": self.t, "success": self.success, "failed": self.failed,
            "retried": self.retried, "dead_lettered": self.dead_lettered,
            "p50": self.p50, "p95": self.p95,
        }  # fmt: skip


async def stats_series(
    client: AsyncClient, names: list[str], since: timedelta = timedelta(hours=1)
) -> ChartSeries:
    """The queues' stats per minute (``client.stats``), every queue and function summed."""
    per_minute: dict[int, FunctionStats] = {}
    for name in names:
        stats = await client.stats(name, since=since)
        for bucket in stats.buckets:
            start = int(bucket.start.timestamp())
            per_minute[start] = per_minute.get(start, FunctionStats()) + bucket.total
    minutes = sorted(per_minute)
    totals = [per_minute[m] for m in minutes]

    def count(*outcomes: str) -> list[int]:
        return [sum(s.counts.get(o, 0) for o in outcomes) for s in totals]

    return ChartSeries(
        minutes, count("success"), count("error", "timeout", "aborted"), count("retried"),
        count("dead_lettered"), [s.percentile(0.5) for s in totals],
        [s.percentile(0.95) for s in totals],
    )  # fmt: skip


# ------------------------------------------------------------------- events


async def event_cursor(client: AsyncClient, name: str) -> str:
    """The id of a queue's newest event: following from it reads what happens next."""
    return await client._run(client._core.event_cursor(name, None))


async def read_events(
    client: AsyncClient, cursors: Mapping[str, str], block: float | None
) -> tuple[list[Event], dict[str, str]]:
    """New events of several queues in one ``XREAD`` (``cursors``: queue -> id read up to).

    Waits up to ``block`` seconds for the first (None: returns at once). Returns the
    events and the cursors moved past them.
    """
    if not cursors:
        return [], {}
    if not client.settings.cluster_nodes:
        return await client._run(_read_events(client, dict(cursors), block))
    # a cluster: the queues' streams live in different slots and one XREAD may not span
    # them; read each queue at once, then block on one of them for at most a second (the
    # live view pushes once a second anyway, so the others wait no longer than that)
    moved, found = dict(cursors), []
    for queue in cursors:
        events, one = await client._run(_read_events(client, {queue: moved[queue]}, None))
        found.extend(events)
        moved.update(one)
    if found or block is None:
        return found, moved
    first = next(iter(moved))
    events, one = await client._run(_read_events(client, {first: moved[first]}, min(block, 1)))
    moved.update(one)
    return events, moved


def _read_events(
    client: AsyncClient, cursors: dict[str, str], block: float | None
) -> Gen[tuple[list[Event], dict[str, str]]]:
    core = client._core
    streams = {core.keys(q).lifecycle: q for q in cursors}
    wait: list[Any] = []
    if block is not None:  # within the socket timeout, as the client's own reads
        wait = ["BLOCK", max(1, int(min(block, core.max_block) * 1000))]
    reply = yield Command(
        ("XREAD", "COUNT", 200, *wait, "STREAMS", *streams, *(cursors[q] for q in streams.values()))
    )
    if isinstance(reply, Mapping):  # RESP3
        pairs = list(reply.items())
    elif isinstance(reply, (list, tuple)):
        pairs = [tuple(p) for p in reply if isinstance(p, (list, tuple)) and len(p) == 2]
    else:
        pairs = []
    out: list[Event] = []
    for key, entries in pairs:
        queue = streams.get(key.decode("utf-8", "replace") if isinstance(key, bytes) else key)
        if queue is None or not isinstance(entries, (list, tuple)) or not entries:
            continue
        events = parse_events(core.keys(queue).queue, entries)
        last = entries[-1][0] if isinstance(entries[-1], (list, tuple)) else None
        if isinstance(last, bytes):  # malformed entries too move the cursor on
            cursors[queue] = last.decode("ascii", "replace")
        out.extend(events)
    return out, cursors


# ------------------------------------------------------------------ workers


@dataclass(frozen=True, slots=True)
class WorkerView:
    """A live worker on one queue, as its health record says."""

    queue: str
    assessment: Assessment
    loops: list[tuple[str, str, str]] = field(default_factory=list)  # name, state, error

    @property
    def name(self) -> str:
        """The worker's name."""
        return self.assessment.worker

    def number(self, key: str) -> int | None:
        """A numeric field of the record (None when absent or not a number)."""
        value = self.assessment.record.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return int(value)

    def text(self, key: str) -> str:
        """A text field of the record ('' when absent)."""
        value = self.assessment.record.get(key)
        return value if isinstance(value, str) else ""


async def workers(client: AsyncClient, name: str) -> tuple[list[WorkerView], int]:
    """The live workers of a queue from their health records, and how many are stale.

    Reading the records scans the keyspace (``SCAN MATCH``): the live stream does it once
    per health interval, not every second.
    """
    records = await client._run(client._core.health_records(name))
    if not records:
        return [], 0
    now = await client._run(redis_time_ms())
    judged = [assess(worker, raw, now) for worker, raw in sorted(records.items())]
    views = [WorkerView(name, a, _loops(a.record)) for a in judged if a.live]
    return views, sum(not a.live for a in judged)


def _loops(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    loops = record.get("loops")
    if not isinstance(loops, dict):
        return []
    out = []
    for loop_name, loop in loops.items():
        state = loop.get("state") if isinstance(loop, dict) else None
        error = loop.get("error") if isinstance(loop, dict) else None
        out.append((str(loop_name), str(state), error if isinstance(error, str) else ""))
    return out


# --------------------------------------------------------------------- jobs


async def jobs_page(
    client: AsyncClient, name: str, state: str, search: str, page: int, per_page: int
) -> tuple[list[JobInfo], int]:
    """One page of a queue's queued, deferred or running jobs, filtered by ``search``.

    ``search`` matches a job id or a function name (a substring, case-insensitive); an
    exact job id is also looked up directly, beyond the listing's reach. Returns the page
    and the number of matches.
    """
    if state == "running":
        jobs = await client.running_jobs(name, LISTING_LIMIT)
    else:
        jobs = [j for j in await client.queued_jobs(name, LISTING_LIMIT) if j.status == state]
    if search:
        needle = search.casefold()
        jobs = [j for j in jobs if needle in j.job_id.casefold() or needle in j.function.casefold()]
        if not jobs:
            exact = await _job_info(client, name, search)
            if exact is not None and exact.status.value == _STATUS_OF.get(state, state):
                jobs = [exact]
    start = max(page - 1, 0) * per_page
    return jobs[start : start + per_page], len(jobs)


_STATUS_OF = {"running": "in_progress"}


async def _job_info(client: AsyncClient, queue: str, job_id: str) -> JobInfo | None:
    try:
        return await client.job(job_id, queue).info()
    except (JobwireError, WireError):
        return None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One execution of a job: its result, or what is readable of it without unpickling."""

    job_try: int
    outcome: str
    worker: str
    start_time: datetime | None
    finish_time: datetime | None
    error: Any  # an ErrorRecord, or None
    value_json: str | None  # the returned value as JSON, None when not shown
    note: str = ""


@dataclass(frozen=True, slots=True)
class JobDetail:
    """What is known of one job: where it is, its arguments, its executions, its dead letters."""

    job_id: str
    queue: str
    status: str
    info: JobInfo | None
    size: int | None
    history: list[HistoryEntry]
    letters: list[DeadLetter]
    progress: Any


async def job_detail(client: AsyncClient, queue: str, job_id: str) -> JobDetail:
    """The job's page: its stored state, its executions (newest first), its dead letters."""
    handle = client.job(job_id, queue)
    status = (await handle.status()).value
    info = await _job_info(client, queue, job_id)
    size = None
    if info is not None and info.args is None:  # arguments not decoded: say how large
        size = await client._run(_stored_size(client, queue, job_id))
    history = [
        _history(client, raw) for raw in await client._run(_raw_results(client, queue, job_id))
    ]
    letters = [d for d in await client.dead_letters(queue, 1000) if d.job_id == job_id]
    return JobDetail(job_id, queue, status, info, size, history, letters, await progress(handle))


async def job_events(client: AsyncClient, queue: str, job_id: str) -> list[Event]:
    """The job's lifecycle events still kept, oldest first (``job.events()``)."""
    try:
        return await client.job(job_id, queue).events()
    except (JobwireError, WireError):
        return []


async def progress_of(client: AsyncClient, queue: str, jobs: list[JobInfo]) -> dict[str, Progress]:
    """The latest progress of each of ``jobs`` that reported one (one round trip)."""
    if not jobs:
        return {}
    return await client._run(_progress_of(client, queue, [j.job_id for j in jobs]))


def _progress_of(client: AsyncClient, queue: str, ids: list[str]) -> Gen[dict[str, Progress]]:
    keys = client._core.keys(queue)
    raw = yield from pipeline([Command(("HGET", keys.job(i), "progress")) for i in ids])
    found = {i: parse_progress(r) for i, r in zip(ids, raw, strict=True)}
    return {i: p for i, p in found.items() if p is not None}


async def progress(handle: Any) -> Any:
    """The job's last reported progress, when the client can tell it (else None)."""
    read = getattr(handle, "progress", None)
    if read is None:
        return None
    try:
        return await read()
    except (JobwireError, WireError):
        return None


def _stored_size(client: AsyncClient, queue: str, job_id: str) -> Gen[int | None]:
    keys = client._core.keys(queue)
    data, _ = yield from job_fields(keys, job_id)
    return None if data is None else len(data)


def _raw_results(client: AsyncClient, queue: str, job_id: str) -> Gen[list[bytes]]:
    entries: list[bytes] = yield Command(("LRANGE", client._core.keys(queue).results(job_id), 0, 9))
    return entries


def _history(client: AsyncClient, raw: bytes) -> HistoryEntry:
    try:
        result = JobResult.from_envelope(client._core.codec.decode_result(raw))
    except FormatNotAccepted:
        return _pickled_history(raw)
    except DecodeError as exc:
        return HistoryEntry(0, "unreadable", "", None, None, None, None, str(exc))
    value = None
    if result.success:
        value = args_json(result.value)
    return HistoryEntry(
        result.job_try, result.outcome, result.worker, result.start_time, result.finish_time,
        result.error, value,
    )  # fmt: skip


def _pickled_history(raw: bytes) -> HistoryEntry:
    """A pickle job's successful result: its metadata, read as msgpack; never unpickled."""
    try:
        obj = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        obj = None
    if not isinstance(obj, dict):
        return HistoryEntry(0, "unreadable", "", None, None, None, None, "not a result")
    payload = obj.get("payload")
    size = len(payload) if isinstance(payload, bytes) else 0
    return HistoryEntry(
        _int(obj.get("try")), str(obj.get("outcome", "")), str(obj.get("worker", "")),
        _time(obj.get("started_ms")), _time(obj.get("finished_ms")), None, None,
        f"a pickled value of {size} bytes: not shown (the dashboard never unpickles)",
    )  # fmt: skip


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _time(value: Any) -> datetime | None:
    ms = _int(value)
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc) if 0 < ms < 2**53 else None


def args_json(value: Any) -> str:
    """A value as indented JSON text (what JSON cannot say is shown as its repr)."""
    return orjson.dumps(
        value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=repr
    ).decode()


# -------------------------------------------------------------- dead letters


async def dead_letters(client: AsyncClient, queues: list[str], limit: int) -> list[DeadLetter]:
    """Dead letters of the given queues, newest first; a queue that cannot be read is skipped."""
    out: list[DeadLetter] = []
    for name in queues:
        try:
            out.extend(await client.dead_letters(name, limit))
        except (JobwireError, WireError, ValueError):
            continue
    out.sort(key=lambda d: d.time, reverse=True)
    return out[:limit]


def preview(data: bytes, limit: int = 2000) -> str:
    """Raw bytes as text: UTF-8 where it is, escapes for the rest and for control characters."""
    text = data[:limit].decode("utf-8", "backslashreplace")
    shown = "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )
    return shown + (f"… ({len(data)} bytes)" if len(data) > limit else "")


def letter_header(client: AsyncClient, letter: DeadLetter) -> dict[str, str] | None:
    """The job metadata of a dead letter's message, when readable (never unpickles)."""
    try:
        header = client._core.codec.read_job_header(letter.data)
    except (DecodeError, ValueError):
        return None
    return {"id": header.id, "function": header.function, "format": header.format}


# ------------------------------------------------------------------ failures


async def recent_failures(client: AsyncClient, limit: int = 100) -> list[JobResult]:
    """The latest failed results (error, timeout, aborted) of every queue, newest first.

    Scans the keyspace for results (``SCAN``): fine for a dashboard, not for a hot path.
    """
    results = await client.all_job_results()
    return [r for r in results if not r.success][:limit]
