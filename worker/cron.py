"""Cron jobs: functions enqueued by the workers themselves on a schedule.

With ``unique=True`` (the default) each scheduled time is enqueued once, however many
workers run the schedule: every worker computes the same times and enqueues with
``enqueue_once`` under a marker named after the time.
"""

from __future__ import annotations

import operator
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from jobwire.errors import InvalidArgument
from jobwire.models import JobSpec

from .functions import Function, func

if TYPE_CHECKING:
    from jobwire.producer import Producer
    from jobwire.protocol import Gen

    from .supervisor import LoopState

__all__ = ["CronJob", "CronScheduler", "cron", "next_run"]

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
#: The days of the longest month of each number, 1 to 12 (February of a leap year).
_MONTH_DAYS = dict(enumerate((31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31), start=1))
Field = int | Iterable[int] | None


def _field(
    value: Field | str | Iterable[str], name: str, low: int, high: int
) -> frozenset[int] | None:
    """A schedule field as the set of its values; InvalidArgument for a value out of range."""
    if value is None:
        return None
    raw: Iterable[Any] = [value] if isinstance(value, (int, str)) else value
    try:
        items = list(raw)
    except TypeError:
        raise InvalidArgument(f"cron {name} must be a number or a set of numbers") from None
    out = set()
    for item in items:
        if name == "weekday" and isinstance(item, str):
            day = _WEEKDAYS.get(item.lower()[:3])
            if day is None:
                raise InvalidArgument(
                    f"cron weekday {item!r} is not a day: use 0 (Monday) to 6 or 'mon'..'sun'"
                )
            number = day
        elif isinstance(item, bool) or not hasattr(type(item), "__index__"):
            raise InvalidArgument(f"cron {name} must be whole numbers, not {item!r:.40}")
        else:
            number = operator.index(item)
        if not low <= number <= high:
            raise InvalidArgument(f"cron {name} {number} is out of range {low}..{high}")
        out.add(number)
    if not out:
        raise InvalidArgument(f"cron {name} is an empty set: it would never run (None is any)")
    return frozenset(out)


def _check_possible(name: str, month: frozenset[int] | None, day: frozenset[int] | None) -> None:
    """Refuse a day that no month of the schedule has (February 30th): it would never run."""
    months = month or frozenset(_MONTH_DAYS)
    if day is not None and not any(d <= _MONTH_DAYS[m] for m in months for d in day):
        raise InvalidArgument(
            f"cron job {name!r} never runs: no month of {sorted(months)} has a day {sorted(day)}"
        )


@dataclass(frozen=True, slots=True)
class CronJob:
    """A schedule and the function it runs (see :func:`cron`)."""

    name: str
    function: Function
    month: frozenset[int] | None
    day: frozenset[int] | None
    weekday: frozenset[int] | None
    hour: frozenset[int] | None
    minute: frozenset[int] | None
    second: frozenset[int] | None
    run_at_startup: bool
    unique: bool
    job_id: str | None

    def next_run(self, after: datetime) -> datetime:
        """The first scheduled time strictly after ``after``."""
        return next_run(self, after)


def cron(
    fn: Callable[..., Any] | Function,
    *,
    name: str | None = None,
    month: Field = None,
    day: Field = None,
    weekday: Field | str | Iterable[str] = None,
    hour: Field = None,
    minute: Field = None,
    second: Field = 0,
    run_at_startup: bool = False,
    unique: bool = True,
    job_id: str | None = None,
    timeout: float | timedelta | None = None,
    max_tries: int | None = 1,
    keep_result: float | timedelta | None = None,
    executor: Any = None,
) -> CronJob:
    """Schedule ``fn``: each field is a value or a set of values; None means any.

    ``weekday`` is 0 (Monday) to 6, or ``"mon"``..``"sun"``. ``second`` defaults to 0, so
    ``cron(f, minute={0, 30})`` runs on the hour and the half hour. ``unique``: one run per
    scheduled time across all workers. ``job_id``: a fixed id (then a run is skipped while
    the previous one is still queued or running). Bad fields and options, or a schedule
    that never comes (February 30th), are an :class:`~jobwire.InvalidArgument`.
    """
    function = func(
        fn,
        name=name,
        timeout=timeout,
        max_tries=max_tries,
        keep_result=keep_result,
        executor=executor,
    )
    months, days = _field(month, "month", 1, 12), _field(day, "day", 1, 31)
    _check_possible(function.name, months, days)
    if job_id is not None and (not isinstance(job_id, str) or not job_id):
        raise InvalidArgument(f"cron job_id must be a non-empty string, not {job_id!r:.40}")
    return CronJob(
        name=function.name,
        function=function,
        month=months,
        day=days,
        weekday=_field(weekday, "weekday", 0, 6),
        hour=_field(hour, "hour", 0, 23),
        minute=_field(minute, "minute", 0, 59),
        second=_field(second, "second", 0, 59),
        run_at_startup=run_at_startup,
        unique=unique,
        job_id=job_id,
    )


def _ok(allowed: frozenset[int] | None, value: int) -> bool:
    return allowed is None or value in allowed


def next_run(job: CronJob, after: datetime) -> datetime:
    """The first time after ``after`` matching every field (jumping whole units)."""
    t = after.replace(microsecond=0) + timedelta(seconds=1)
    for _ in range(100_000):
        if not _ok(job.month, t.month):
            year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
            t = t.replace(year=year, month=month, day=1, hour=0, minute=0, second=0)
        elif not (_ok(job.day, t.day) and _ok(job.weekday, t.weekday())):
            t = (t + timedelta(days=1)).replace(hour=0, minute=0, second=0)
        elif not _ok(job.hour, t.hour):
            t = (t + timedelta(hours=1)).replace(minute=0, second=0)
        elif not _ok(job.minute, t.minute):
            t = (t + timedelta(minutes=1)).replace(second=0)
        elif not _ok(job.second, t.second):
            t += timedelta(seconds=1)
        else:
            return t
    raise InvalidArgument(f"cron job {job.name!r} never runs (impossible schedule)")


class CronScheduler:
    """Enqueues each cron job at its times (a supervised loop of the worker).

    Times are read from ``now_ms`` (Redis time), so a worker whose clock is off still
    enqueues at the right moment.
    """

    def __init__(
        self,
        jobs: Sequence[CronJob],
        *,
        core: Producer,
        queue: str,
        worker: str,
        tz: tzinfo,
        now_ms: Callable[[], int],
        run: Callable[[Gen[Any]], Awaitable[Any]],
        pause: Callable[[float], Awaitable[None]],
        stopping: Callable[[], bool],
    ) -> None:
        self.jobs = list(jobs)
        self.core = core
        self.queue = queue
        self.worker = worker
        self.tz = tz
        self.now_ms = now_ms
        self._run = run
        self._pause = pause
        self._stopping = stopping
        self._started = False
        self._upcoming: dict[str, datetime] = {}

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms() / 1000, self.tz)

    async def loop(self, state: LoopState) -> None:
        """Enqueue every due run until the worker stops (restartable after a failure)."""
        if not self._started:
            for job in self.jobs:
                if job.run_at_startup:
                    await self.enqueue(job, None)
            self._started = True
            now = self._now()
            self._upcoming = {job.name: job.next_run(now) for job in self.jobs}
        by_name = {job.name: job for job in self.jobs}
        while not self._stopping() and self._upcoming:
            name = min(self._upcoming, key=lambda n: self._upcoming[n])
            when = self._upcoming[name]
            state.waiting()
            await self._pause(max(0.0, (when - self._now()).total_seconds()))
            if self._stopping():
                return
            if self._now() < when:
                continue  # woken early (the clock offset moved): wait again
            await self.enqueue(by_name[name], when)
            self._upcoming[name] = by_name[name].next_run(when)
            state.beat()

    async def enqueue(self, job: CronJob, when: datetime | None) -> None:
        """Enqueue one run (at most once per scheduled time across workers if unique)."""
        stamp = "startup-" + self.worker if when is None else str(int(when.timestamp()))
        job_id = job.job_id or f"cron:{job.name}:{stamp}"
        spec = JobSpec(job.name, _job_id=job_id, _queue_name=self.queue)
        once = (f"cron:{job.name}:{stamp}", 24 * 3600 * 1000) if job.unique and when else None
        await self._run(self.core.enqueue(spec, once))
