"""Cron across several workers, and CPU jobs using every core in the process pool."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import redis

import jobwire
from jobwire.worker import cron, func
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker

from .jobs import burn, burn_span

RUNS: list[str] = []


async def tick(ctx: dict[str, Any]) -> str:
    RUNS.append(ctx["job_id"])
    return ctx["job_id"]


def test_two_workers_run_each_scheduled_second_exactly_once(
    start_worker: StartWorker, redis_url: str
) -> None:
    RUNS.clear()
    schedule = [cron(tick, second=set(range(60)))]  # every second
    first = start_worker([], cron_jobs=schedule)
    second = start_worker([], cron_jobs=schedule)
    time.sleep(5.2)
    runs = list(RUNS)
    counts = Counter(runs)
    print(f"cron runs in 5.2 s with two workers: {len(runs)} ({len(counts)} distinct times)")
    assert len(counts) >= 4
    assert all(n == 1 for n in counts.values()), counts
    stamps = sorted(int(job_id.rsplit(":", 1)[1]) for job_id in counts)
    assert stamps == list(range(stamps[0], stamps[0] + len(stamps)))  # consecutive seconds
    assert first.stats.complete + second.stats.complete == len(runs)


def test_run_at_startup(start_worker: StartWorker) -> None:
    RUNS.clear()
    start_worker([], cron_jobs=[cron(tick, hour=3, minute=33, run_at_startup=True)])
    assert wait_until(lambda: len(RUNS) == 1)
    assert RUNS[0].startswith("cron:tick:startup-")


def test_cron_schedule_arithmetic() -> None:
    from datetime import datetime

    job = cron(tick, weekday="mon", hour={9, 17}, minute=30)
    assert job.next_run(datetime(2026, 11, 23, 9, 30)) == datetime(2026, 11, 23, 17, 30)
    assert job.next_run(datetime(2026, 11, 23, 17, 30)) == datetime(2026, 11, 30, 9, 30)
    monthly = cron(tick, month=2, day=29, hour=0, minute=0)
    assert monthly.next_run(datetime(2026, 3, 1)) == datetime(2028, 2, 29)


def test_process_jobs_run_at_the_same_time_in_different_processes(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    # overlap in time, not a speed figure: it holds however busy the machine is, and a
    # worker that ran process jobs one at a time (or in one process) never shows it
    start_worker([func(burn_span, executor="process")], process_workers=2, max_jobs=4)
    jobs = [client.enqueue("burn_span", 0.3) for _ in range(4)]
    spans = [job.result(timeout=60) for job in jobs]
    assert len({pid for pid, _, _ in spans}) == 2
    overlapping = [
        (a, b)
        for a in spans
        for b in spans
        if a[0] != b[0] and a[1] < b[2] and b[1] < a[2]  # two processes, intervals overlap
    ]
    assert overlapping, spans


def test_thread_executor_gil_bound_for_comparison(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    # not an assertion of speed: the same work in threads, printed beside the process figure
    start_worker([func(burn, executor="thread")], max_jobs=4)
    started = time.monotonic()
    jobs = [client.enqueue("burn", 0.25) for _ in range(4)]
    cpu = sum(job.result(timeout=60) for job in jobs)
    print(f"thread executor: parallelism {cpu / (time.monotonic() - started):.2f} (GIL-bound)")


def test_cron_jobs_are_registered_functions(redis_url: str) -> None:
    from jobwire.worker import Worker

    worker = Worker([], cron_jobs=[cron(tick, minute=0)], redis_settings=redis_url)
    assert "tick" in worker.functions
    with redis.Redis.from_url(redis_url) as r:
        assert r.ping()
