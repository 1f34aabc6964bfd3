"""Statistics that survive restarts: counts by outcome and duration histograms per function.

Workers count every outcome inside the calls that record it (``finish``, ``retry``,
``dead_letter``; a client's ``abort`` of a waiting job), with ``HINCRBY`` on one hash per
queue per minute, kept 24 hours after its minute, and one per hour, kept 30 days (see
wire/SPEC.md, section 12.9). Fields of those hashes, for a function ``F``:

* ``c:OUTCOME:F``, how many ended so (:data:`OUTCOMES`);
* ``b:I:F``, how many executions took a time in histogram bucket ``I`` (:data:`DURATION_BOUNDS`);
* ``t:F``, their total duration in ms.

This module names the fields, parses hashes read back (untrusted: odd fields are skipped)
and holds the typed values :meth:`jobwire.Client.stats` returns.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Final, Literal

from .errors import InvalidArgument

__all__ = [
    "DURATION_BOUNDS",
    "HOUR_KEPT",
    "MINUTE_KEPT",
    "OUTCOMES",
    "RESOLUTIONS",
    "FunctionStats",
    "Resolution",
    "Statistics",
    "StatsBucket",
    "bucket_index",
    "parse_stats_hash",
]

#: Upper bounds (seconds, inclusive) of the duration histogram's buckets, log-spaced 1-2.5-5
#: per decade from 1 ms to 1000 s; a last bucket holds everything longer (+Inf). Fixed, so
#: that histograms of every worker, minute and version add up (and Prometheus reuses them).
DURATION_BOUNDS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
)  # fmt: skip
#: How an execution or a job can end, as counted: the four outcomes of a result, plus a
#: failed attempt that is tried again and a message moved to the dead letters.
OUTCOMES: Final = ("success", "error", "timeout", "aborted", "retried", "dead_lettered")
Resolution = Literal["minute", "hour"]
#: Bucket width (ms) by resolution.
RESOLUTIONS: Final[dict[str, int]] = {"minute": 60_000, "hour": 3_600_000}
#: How long buckets are kept after their end (ms): 24 h of minutes, 30 days of hours.
MINUTE_KEPT: Final = 24 * 3_600_000
HOUR_KEPT: Final = 30 * 24 * 3_600_000
KEPT: Final[dict[str, int]] = {"minute": MINUTE_KEPT, "hour": HOUR_KEPT}
_NBUCKETS: Final = len(DURATION_BOUNDS) + 1
_MAX_COUNT: Final = 2**53


def bucket_index(seconds: float) -> int:
    """The histogram bucket of a duration (the last one for anything beyond 1000 s)."""
    return bisect.bisect_left(DURATION_BOUNDS, max(0.0, seconds))


@dataclass(frozen=True, slots=True)
class FunctionStats:
    """Counts and durations of one function (or of all together) over some time.

    ``counts`` has every outcome of :data:`OUTCOMES` (0 when none); ``buckets`` holds, per
    bucket of :data:`DURATION_BOUNDS` plus the last (+Inf), how many executions took that
    long (not cumulative); ``duration_sum`` is their total in seconds.
    """

    counts: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    buckets: tuple[int, ...] = (0,) * _NBUCKETS
    duration_sum: float = 0.0

    @property
    def executions(self) -> int:
        """How many executions the histogram holds (those that ran: not dead letters)."""
        return sum(self.buckets)

    @property
    def mean_duration(self) -> float | None:
        """Mean duration in seconds; None without executions."""
        n = self.executions
        return self.duration_sum / n if n else None

    def percentile(self, q: float) -> float | None:
        """Estimated ``q``-quantile of the durations (0 < q ≤ 1), in seconds.

        Interpolated linearly within its bucket, as Prometheus's ``histogram_quantile``; a
        quantile in the last bucket is its lower bound (1000 s). None without executions.
        """
        if not 0 < q <= 1:
            raise InvalidArgument(f"a percentile is a fraction in (0, 1], not {q!r:.40}")
        n = self.executions
        if not n:
            return None
        rank, seen = q * n, 0
        for i, count in enumerate(self.buckets):
            if count and seen + count >= rank:
                if i == len(DURATION_BOUNDS):
                    return DURATION_BOUNDS[-1]
                low = DURATION_BOUNDS[i - 1] if i else 0.0
                return low + (DURATION_BOUNDS[i] - low) * (rank - seen) / count
            seen += count
        return DURATION_BOUNDS[-1]

    def __add__(self, other: FunctionStats) -> FunctionStats:
        return FunctionStats(
            {o: self.counts.get(o, 0) + other.counts.get(o, 0) for o in OUTCOMES},
            tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=True)),
            self.duration_sum + other.duration_sum,
        )

    @staticmethod
    def merged(items: Iterable[FunctionStats]) -> FunctionStats:
        """The sum of ``items`` (empty stats for none)."""
        total = FunctionStats()
        for item in items:
            total = total + item
        return total


@dataclass(frozen=True, slots=True)
class StatsBucket:
    """One minute or hour of a queue: its stats by function."""

    start: datetime
    functions: Mapping[str, FunctionStats]

    @property
    def total(self) -> FunctionStats:
        """Every function together."""
        return FunctionStats.merged(self.functions.values())


@dataclass(frozen=True, slots=True)
class Statistics:
    """A queue's stats over time: one bucket per minute or hour, oldest first.

    Every bucket of the range is there, empty ones included, so charts need no gap filling.
    """

    queue_name: str
    resolution: Resolution
    buckets: tuple[StatsBucket, ...]

    def functions(self) -> list[str]:
        """Every function seen in the range, sorted."""
        return sorted({name for b in self.buckets for name in b.functions})

    def total(self, function: str | None = None) -> FunctionStats:
        """The whole range summed, for one function or (None) for all of them."""
        return FunctionStats.merged(
            s
            for b in self.buckets
            for name, s in b.functions.items()
            if function is None or name == function
        )


def bucket_starts(resolution: str, since_ms: int, now_ms: int) -> list[int]:
    """Start times (ms) of the buckets from ``since_ms`` to now, within what is kept."""
    width = RESOLUTIONS[resolution]
    oldest = now_ms - KEPT[resolution] - width
    first = max(since_ms, oldest) // width * width
    return list(range(first, now_ms // width * width + 1, width))


def check_function(function: object) -> None:
    """A function name to filter by (or None), else InvalidArgument."""
    if function is not None and not isinstance(function, str):
        raise InvalidArgument(f"function is a function's name, not {function!r:.40}")


def check_resolution(resolution: object) -> Resolution:
    """``"minute"`` or ``"hour"``, else InvalidArgument."""
    if resolution == "minute":
        return "minute"
    if resolution == "hour":
        return "hour"
    raise InvalidArgument(f"resolution is 'minute' or 'hour', not {resolution!r:.40}")


def since_ms(since: datetime | timedelta | None, resolution: str, now_ms: int) -> int:
    """When a stats range starts: a time, a time ago, or (None) an hour / a day ago."""
    if since is None:
        return now_ms - (3_600_000 if resolution == "minute" else 24 * 3_600_000)
    if isinstance(since, timedelta):
        return now_ms - int(since.total_seconds() * 1000)
    if isinstance(since, datetime):
        return int(since.timestamp() * 1000)
    raise InvalidArgument(f"since is a datetime or a timedelta, not {since!r:.40}")


def _count(value: object) -> int | None:
    if isinstance(value, (bytes, str)):
        try:
            n = int(value)
        except ValueError:
            return None
        return n if 0 <= n <= _MAX_COUNT else None
    return None


def parse_stats_hash(
    fields: Mapping[bytes, bytes], function: str | None = None
) -> dict[str, FunctionStats]:
    """A stats hash as read from Redis, by function; fields that make no sense are skipped.

    Everything read is untrusted: a field of no known shape, a count that is no
    non-negative integer, a bucket index out of range are ignored; function names that are
    not UTF-8 are kept with backslash escapes.
    """
    counts: dict[str, dict[str, int]] = {}
    buckets: dict[str, list[int]] = {}
    sums: dict[str, int] = {}
    for raw, value in fields.items():
        n = _count(value)
        if n is None or not isinstance(raw, (bytes, str)):
            continue
        name = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else raw
        kind, _, rest = name.partition(":")
        if kind == "t":
            fn = rest
        else:
            sub, sep, fn = rest.partition(":")
            if not sep:
                continue
        if function is not None and fn != function:
            continue
        if kind == "c" and sub in OUTCOMES:
            counts.setdefault(fn, dict.fromkeys(OUTCOMES, 0))[sub] = n
        elif kind == "b" and sub.isdigit() and int(sub) < _NBUCKETS:
            buckets.setdefault(fn, [0] * _NBUCKETS)[int(sub)] = n
        elif kind == "t":
            sums[fn] = n
    names = set(counts) | set(buckets) | set(sums)
    return {
        fn: FunctionStats(
            counts.get(fn) or dict.fromkeys(OUTCOMES, 0),
            tuple(buckets.get(fn) or (0,) * _NBUCKETS),
            sums.get(fn, 0) / 1000,
        )
        for fn in sorted(names)
    }


def summed(replies: Sequence[object]) -> dict[bytes, bytes]:
    """The stats hashes of one bucket in several partitions as one (every field is a count).

    A reply that is no hash, and a value that is no count, are left out.
    """
    if len(replies) == 1:
        only = replies[0]
        return dict(only) if isinstance(only, Mapping) else {}
    total: dict[bytes, int] = {}
    for reply in replies:
        if not isinstance(reply, Mapping):
            continue
        for name, value in reply.items():
            n = _count(value)
            if n is not None and isinstance(name, bytes):
                total[name] = total.get(name, 0) + n
    return {name: str(n).encode() for name, n in total.items()}


def statistics(
    queue: str, resolution: Resolution, starts: list[int], hashes: list[dict[str, FunctionStats]]
) -> Statistics:
    """Bucketed stats from the parsed hashes of ``starts``."""
    return Statistics(
        queue,
        resolution,
        tuple(
            StatsBucket(datetime.fromtimestamp(start / 1000, tz=timezone.utc), functions)
            for start, functions in zip(starts, hashes, strict=True)
        ),
    )


def duration_ms(seconds: float) -> int:
    """A duration as the whole ms a stats hash counts (never negative, never NaN)."""
    return 0 if math.isnan(seconds) else max(0, round(seconds * 1000))
