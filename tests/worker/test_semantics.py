"""Worker behaviour: deferral timing, results kept, hooks, headers, expiry, tries, health."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

import jobwire
from jobwire import JobStatus
from jobwire.worker import Retry, Worker, func
from tests.conftest import on_both
from tests.helpers.support import LoopThread, wait_until
from tests.helpers.workers import StartWorker


@pytest.fixture(params=["single", "cluster"])
def redis_url(request: pytest.FixtureRequest) -> str:
    """Every case runs on one Redis and on a Redis Cluster (3 masters, 3 replicas)."""
    return on_both(request)


async def stamp(ctx: dict[str, Any]) -> int:
    return time.time_ns() // 1_000_000


async def echo_ctx(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {
        "job_id": ctx["job_id"],
        "job_try": ctx["job_try"],
        "queue": ctx["queue_name"],
        "headers": ctx["headers"],
        "state": ctx.get("state"),
        "args": list(args),
        "enqueue_time": ctx["enqueue_time"].isoformat(),
        "worker": ctx["worker"],
    }


async def always_retry(ctx: dict[str, Any]) -> None:
    raise Retry()


def test_deferred_jobs_start_on_time(start_worker: StartWorker, client: jobwire.Client) -> None:
    start_worker([stamp])
    lateness = []
    for delay in (0.3, 0.6, 0.9):
        due = datetime.now(timezone.utc) + timedelta(seconds=delay)
        job = client.enqueue("stamp", _defer_until=due)
        started_ms = job.result(timeout=30)
        lateness.append(started_ms - int(due.timestamp() * 1000))
    print(f"deferred job start lateness (ms): {lateness}")
    assert all(0 <= late <= 50 for late in lateness), lateness


def test_a_newly_deferred_earlier_job_is_not_delayed_by_a_later_one(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    start_worker([stamp])
    client.enqueue("stamp", _defer_by=3600)
    time.sleep(0.2)  # the idle worker is now blocked until its next read times out
    due = datetime.now(timezone.utc) + timedelta(seconds=0.4)
    started_ms = client.enqueue("stamp", _defer_until=due).result(timeout=30)
    assert 0 <= started_ms - int(due.timestamp() * 1000) <= 50


def test_context_carries_job_data_headers_and_startup_state(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    async def startup(ctx: dict[str, Any]) -> None:
        ctx["state"] = "from on_startup"

    worker = start_worker([echo_ctx], on_startup=startup)
    headers = {"traceparent": "00-abc-def-01", "tenant": "acme"}
    job = client.enqueue("echo_ctx", 1, 2, _headers=headers, _queue_name="default")
    ctx = job.result(timeout=30)
    assert ctx["job_id"] == job.job_id and ctx["job_try"] == 1 and ctx["queue"] == "default"
    assert ctx["headers"] == headers and ctx["state"] == "from on_startup"
    assert ctx["args"] == [1, 2] and ctx["worker"] == worker.name


def test_job_hooks_see_function_args_outcome_and_result(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    seen: list[tuple[str, Any, Any, Any]] = []
    start_worker(
        on_job_start=lambda ctx: seen.append(("start", ctx["function"], ctx["args"], None)),
        on_job_end=lambda ctx: seen.append(("end", ctx["function"], ctx["outcome"], ctx["result"])),
        after_job_end=lambda ctx: seen.append(("after", ctx["function"], ctx["success"], None)),
    )
    client.enqueue("ok_loop", 4).result(timeout=30)
    with pytest.raises(jobwire.JobFailed):
        client.enqueue("fail_loop").result(timeout=30)
    wait_until(lambda: len(seen) == 6)
    assert seen[:3] == [
        ("start", "ok_loop", (4,), None),
        ("end", "ok_loop", "success", 8),
        ("after", "ok_loop", True, None),
    ]
    assert seen[4][:3] == ("end", "fail_loop", "error") and isinstance(seen[4][3], ValueError)


def test_startup_and_shutdown_hooks(redis_url: str, loop_thread: LoopThread) -> None:
    calls: list[str] = []
    worker = Worker(
        [stamp],
        redis_settings=redis_url,
        handle_signals=False,
        on_startup=lambda ctx: calls.append("startup"),
        on_shutdown=lambda ctx: calls.append("shutdown"),
    )
    loop_thread.run(worker.startup())
    loop_thread.loop.call_soon_threadsafe(worker.stop)
    loop_thread.run(worker.shutdown())
    assert calls == ["startup", "shutdown"]


def result_ttl(redis_url: str, job_id: str) -> int:
    with jobwire.RedisSettings.from_url(redis_url).sync_client() as r:
        return int(r.pttl(f"jobwire:{{default}}:results:{job_id}"))


def test_keep_result_settings(
    start_worker: StartWorker, client: jobwire.Client, redis_url: str
) -> None:
    start_worker(
        [
            func(stamp),
            func(stamp, name="kept_forever", keep_result_forever=True),
            func(stamp, name="kept_briefly", keep_result=5),
            func(stamp, name="not_kept", keep_result=0),
        ],
        keep_result=120,
    )
    default = client.enqueue("stamp")
    default.result(timeout=30)
    assert 110_000 < result_ttl(redis_url, default.job_id) <= 120_000
    forever = client.enqueue("kept_forever")
    forever.result(timeout=30)
    assert result_ttl(redis_url, forever.job_id) == -1
    brief = client.enqueue("kept_briefly")
    brief.result(timeout=30)
    assert 0 < result_ttl(redis_url, brief.job_id) <= 5_000
    gone = client.enqueue("not_kept")
    with pytest.raises(jobwire.ResultNotFound):
        gone.result(timeout=30)
    assert gone.status() is JobStatus.NOT_FOUND


def test_keep_result_forever_for_the_worker(
    start_worker: StartWorker, client: jobwire.Client, redis_url: str
) -> None:
    start_worker([stamp], keep_result_forever=True)
    job = client.enqueue("stamp")
    job.result(timeout=30)
    assert result_ttl(redis_url, job.job_id) == -1


def test_max_tries_ends_retries_with_a_failure(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    start_worker([func(always_retry, max_tries=3)], retry_backoff=0.05)
    job = client.enqueue("always_retry")
    with pytest.raises(jobwire.JobFailed, match="max_tries=3"):
        job.result(timeout=30)
    assert [r.job_try for r in job.results()] == [3, 2, 1]


def test_retry_without_delay_backs_off_by_try(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    start_worker([func(always_retry, max_tries=3)], retry_backoff=0.3)
    job = client.enqueue("always_retry")
    with pytest.raises(jobwire.JobFailed):
        job.result(timeout=30)
    first, second, third = reversed(job.results())
    gap1 = (second.start_time - first.finish_time).total_seconds()
    gap2 = (third.start_time - second.finish_time).total_seconds()
    assert 0.25 <= gap1 < gap2  # 0.3s after try 1, 0.6s after try 2


def test_job_try_option_counts_against_max_tries(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    start_worker(max_tries=2)
    with pytest.raises(jobwire.JobFailed, match="maximum of 2 tries"):
        client.enqueue("ok_loop", 1, _job_try=3).result(timeout=30)


def test_expired_retry_is_not_run_again(start_worker: StartWorker, client: jobwire.Client) -> None:
    start_worker([func(always_retry, max_tries=10)], retry_backoff=0.5)
    job = client.enqueue("always_retry", _expires=0.3)
    with pytest.raises(jobwire.JobFailed, match="expired"):
        job.result(timeout=30)


def fails_until(ctx: dict[str, Any], path: str) -> str:
    if not os.path.exists(path):
        raise ValueError("not yet")
    with open(path) as f:
        return f.read()


def test_a_job_that_failed_for_good_is_retried_with_its_arguments(
    start_worker: StartWorker, client: jobwire.Client, tmp_path: Path
) -> None:
    start_worker([fails_until])
    flag = tmp_path / "flag"
    job = client.enqueue("fails_until", str(flag))
    with pytest.raises(jobwire.JobFailed, match="not yet"):
        job.result(timeout=30)
    flag.write_text("ready")
    again = job.retry()
    assert again is not None and again.job_id == job.job_id
    assert again.result(timeout=30) == "ready"
    assert [r.outcome for r in job.results()] == ["success", "error"]
    with pytest.raises(jobwire.JobNotFound, match="succeeded"):
        job.retry()


def test_health_record_and_check(
    start_worker: StartWorker, client: jobwire.Client, redis_url: str
) -> None:
    worker = start_worker(health_check_interval=0.3)
    client.enqueue("ok_loop", 1).result(timeout=30)

    def record() -> dict[str, Any] | None:
        with jobwire.RedisSettings.from_url(redis_url).sync_client() as r:
            raw = r.get(f"jobwire:{{default}}:health:{worker.name}")
        return orjson.loads(raw) if raw else None

    health = wait_until(lambda: (r := record()) is not None and r["complete"] == 1 and r)
    assert health["queue"] == "default" and health["ongoing"] == 0 and health["queued"] == 0
    with jobwire.RedisSettings.from_url(redis_url).sync_client() as r:
        # it expires after three missed refreshes (plus a second)
        assert 0 < r.pttl(f"jobwire:{{default}}:health:{worker.name}") <= 3 * 300 + 1000


def test_worker_from_an_arq_style_settings_class(redis_url: str) -> None:
    class Settings:
        functions = (stamp,)
        redis_settings = redis_url
        max_jobs = 3
        queue_name = "special"
        handle_signals = False
        not_an_option = "not a setting"
        extra_settings = ("not_an_option",)

    worker = Worker.from_settings(Settings, burst=True)
    assert worker.max_jobs == 3 and worker.burst and [q.name for q in worker.queues] == ["special"]
    with jobwire.Client.from_url(redis_url, queue_name="special") as client:
        jobs = [client.enqueue("stamp") for _ in range(5)]
        worker.run()  # burst: returns once the queue is empty
        assert all(job.status() is JobStatus.COMPLETE for job in jobs)


def test_max_jobs_bounds_concurrency(start_worker: StartWorker, client: jobwire.Client) -> None:
    worker = start_worker(max_jobs=3)
    jobs = [client.enqueue("slow_loop") for _ in range(6)]
    wait_until(lambda: sum(j.status() is JobStatus.IN_PROGRESS for j in jobs) == 3)
    time.sleep(0.3)
    assert sum(j.status() is JobStatus.IN_PROGRESS for j in jobs) == 3
    assert len(worker.slots.running) == 3
    for job in jobs[:3]:
        assert job.abort(timeout=10)
    assert wait_until(lambda: sum(j.status() is JobStatus.IN_PROGRESS for j in jobs) == 3)


def test_max_burst_jobs(redis_url: str, client: jobwire.Client) -> None:
    jobs = [client.enqueue("stamp") for _ in range(5)]
    Worker(
        [stamp],
        redis_settings=redis_url,
        burst=True,
        max_burst_jobs=2,
        handle_signals=False,
        max_jobs=1,
    ).run()
    assert [j.status() for j in jobs].count(JobStatus.COMPLETE) == 2


def test_burst_mode_runs_a_job_whose_workers_lease_ran_out(
    redis_url: str, client: jobwire.Client
) -> None:
    from jobwire.consumer import Consumer
    from jobwire.protocol import run_sync
    from tests.helpers.support import fetch

    job = client.enqueue("stamp")
    assert job is not None
    dead = Consumer(client._core, "dead-worker", lease=0.5)  # took the job, then died
    run_sync(client.redis, dead.ensure_group())
    (taken,) = run_sync(client.redis, fetch(dead, 10))
    assert taken.job_id == job.job_id and job.status() is JobStatus.IN_PROGRESS
    time.sleep(0.7)  # its lease (the same as the burst worker's) runs out
    started = time.monotonic()
    Worker([stamp], redis_settings=redis_url, burst=True, handle_signals=False, lease=0.5).run()
    assert job.status() is JobStatus.COMPLETE  # not left "in progress" for a long-lived worker
    assert isinstance(job.result(timeout=5), int)
    assert time.monotonic() - started < 30
