"""Nothing stalls or is lost silently: Redis losing its state or memory, a blocked event
loop, health that tells the truth, clocks, process-pool timing and rolling deploys."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

import jobwire
from jobwire.keys import QueueKeys
from jobwire.worker import func
from tests.helpers.redis_harness import RedisServer
from tests.helpers.support import wait_until
from tests.helpers.workers import ROOT, StartWorker, jobwire_cli

from .jobs import nap_process

KEYS = QueueKeys("jobwire", "default")


async def double(ctx: dict[str, Any], x: int) -> int:
    return 2 * x


async def new_fn(ctx: dict[str, Any]) -> str:
    return ctx["worker"]


def spawn(url: str, settings: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobwire", "worker", f"tests.worker.robust_settings.{settings}"],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "REDIS_URL": url, **env},
    )


def check(url: str, settings: str = "Settings") -> subprocess.CompletedProcess[str]:
    return jobwire_cli("worker", f"tests.worker.robust_settings.{settings}", "--check", url=url)


# ---------------------------------------------------------------- Redis lost its state


def test_redis_restarted_empty_new_jobs_run(
    redis_factory: Callable[..., RedisServer], start_worker: StartWorker
) -> None:
    server = redis_factory()  # no persistence: a restart loses everything
    start_worker([func(double)], url=server.url)
    with jobwire.Client.from_url(server.url) as client:
        assert client.enqueue("double", 1).result(timeout=10) == 2
        server.restart()
        job = wait_until(lambda: _try_enqueue(client, 2), timeout=10)
        assert job.result(timeout=20) == 4


def _try_enqueue(client: jobwire.Client, x: int) -> jobwire.Job | None:
    try:
        return client.enqueue("double", x)
    except jobwire.RedisUnavailable:
        return None


def test_an_evicted_stream_is_recreated(
    start_worker: StartWorker, client: jobwire.Client, redis_url: str, caplog: Any
) -> None:
    caplog.set_level(logging.ERROR, logger="jobwire")
    worker = start_worker([func(double)])
    assert client.enqueue("double", 1).result(timeout=10) == 2
    with redis.Redis.from_url(redis_url) as r:
        r.delete(KEYS.stream)  # what an eviction policy or an operator's DEL does
    assert client.enqueue("double", 3).result(timeout=20) == 6
    assert any("recreating" in rec.getMessage() for rec in caplog.records)
    assert all(s["state"] in ("running", "waiting") for s in worker.supervisor.records().values())


def test_out_of_memory_refuses_enqueues_and_the_worker_survives(
    redis_factory: Callable[..., RedisServer], start_worker: StartWorker, caplog: Any
) -> None:
    server = redis_factory(extra_args=["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"])
    caplog.set_level(logging.WARNING, logger="jobwire")
    start_worker([func(double)], url=server.url)
    with jobwire.Client.from_url(server.url) as client, redis.Redis.from_url(server.url) as r:
        assert client.enqueue("double", 1).result(timeout=10) == 2
        r.setrange("filler", 6_000_000, "x")  # one small command leaves Redis over maxmemory
        before = r.dbsize()
        with pytest.raises(jobwire.RedisOutOfMemory):
            client.enqueue("double", 2)
        assert r.dbsize() == before  # nothing half-written
        time.sleep(1)  # the worker meets the full Redis too (its fetches write)
        r.delete("filler")
        assert client.enqueue("double", 3).result(timeout=20) == 6


def test_an_eviction_policy_is_a_loud_warning_everywhere(
    redis_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = redis_factory(extra_args=["--maxmemory-policy", "allkeys-lru"])
    proc = spawn(server.url, "Settings", tmp_path / "worker.log")
    try:
        assert wait_until(lambda: check(server.url).returncode == 0, 30, 0.2)
        assert "maxmemory-policy is 'allkeys-lru'" in check(server.url).stdout
        assert "allkeys-lru" in jobwire_cli("info", url=server.url).stdout
    finally:
        proc.terminate()
        proc.wait(30)
    assert "maxmemory-policy is 'allkeys-lru'" in (tmp_path / "worker.log").read_text()


# ----------------------------------------------------------------- a blocked event loop


@pytest.mark.slow
def test_a_job_blocking_the_loop_past_the_lease_runs_every_job_once(
    redis_url: str, client: jobwire.Client, tmp_path: Path
) -> None:
    record = tmp_path / "starts"
    env = {"RECORD_FILE": str(record)}
    blocker = client.enqueue("block_the_loop", 5, _job_id="the-blocker")
    naps = [client.enqueue("nap") for _ in range(5)]
    first = spawn(redis_url, "ShortLease", tmp_path / "first.log", **env)  # lease: 2 s
    second = None
    try:
        assert wait_until(lambda: record.exists() and "the-blocker" in record.read_text(), 20)
        second = spawn(redis_url, "ShortLease", tmp_path / "second.log", **env)  # to steal
        assert blocker.result(timeout=40) == "done"
        assert [job.result(timeout=20) for job in naps] == ["rested"] * 5
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.terminate()
                proc.wait(30)
    starts = Counter(line.split()[1] for line in record.read_text().splitlines())
    assert set(starts.values()) == {1}, starts  # nothing ran twice
    log = (tmp_path / "first.log").read_text()
    assert "event loop has been blocked" in log and "'the-blocker' (block_the_loop)" in log
    assert "lease of job" not in log


# ----------------------------------------------------------------- health tells the truth


def test_a_graceful_stop_makes_check_fail_at_once(redis_url: str, tmp_path: Path) -> None:
    proc = spawn(redis_url, "Settings", tmp_path / "worker.log")
    try:
        assert wait_until(lambda: check(redis_url).returncode == 0, 30, 0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert check(redis_url).returncode == 1  # no waiting for a record to expire
    assert "worker " not in jobwire_cli("info", url=redis_url).stdout


def test_check_wants_a_worker_of_its_own_settings(redis_url: str, tmp_path: Path) -> None:
    proc = spawn(redis_url, "Settings", tmp_path / "worker.log")
    try:
        assert wait_until(lambda: check(redis_url).returncode == 0, 30, 0.2)
        other = check(redis_url, "Elsewhere")  # same queue, but a function this one lacks
        assert other.returncode == 1 and "lacks elsewhere" in other.stdout
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_wedged_loop_makes_check_fail(redis_url: str, tmp_path: Path) -> None:
    proc = spawn(redis_url, "Wedged", tmp_path / "worker.log")
    try:
        assert wait_until(lambda: check(redis_url, "Wedged").returncode == 0, 30, 0.2)
        failed = wait_until(
            lambda: (c := check(redis_url, "Wedged")).returncode == 1 and c, 30, 0.5
        )
        assert failed and "made no progress" in failed.stdout and "fetch default" in failed.stdout
        assert "UNHEALTHY" in jobwire_cli("info", url=redis_url).stdout
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_health_record_has_current_counts(
    start_worker: StartWorker, client: jobwire.Client, redis_url: str
) -> None:
    worker = start_worker([func(double)], health_check_interval=0.2)
    for i in range(20):
        client.enqueue("double", i).result(timeout=10)
    info = wait_until(
        lambda: " 20 complete" in (out := jobwire_cli("info", url=redis_url).stdout) and out, 10
    )
    assert info and f"worker {worker.name}: 20 complete" in info


def test_a_single_worker_never_reports_a_false_lease_loss(
    start_worker: StartWorker, client: jobwire.Client, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="jobwire")
    worker = start_worker([func(double)], lease=0.6, max_jobs=50)  # renewals every 0.2 s
    jobs = client.enqueue_many([jobwire.JobSpec("double", i) for i in range(10_000)])
    assert jobs[-1] is not None and jobs[-1].result(timeout=120) == 2 * 9_999
    assert wait_until(lambda: worker.stats.complete == 10_000, 60)
    assert not [r for r in caplog.records if "lease" in r.getMessage()]
    assert worker.stats.leases_lost == 0


# -------------------------------------------------------------------------- timing


def test_process_jobs_beyond_the_pool_are_not_timed_out_while_they_wait(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    start_worker([func(nap_process, executor="process", timeout=3)], max_jobs=4, process_workers=2)
    # two rounds of 1.5 s: the second round waited 1.5 s for a process, which is not its time
    jobs = [client.enqueue("nap_process", 1.5) for _ in range(4)]
    assert [job.result(timeout=30) for job in jobs] == ["rested"] * 4


def test_a_worker_with_a_wrong_clock_defers_and_expires_by_redis_time(
    redis_url: str, client: jobwire.Client, tmp_path: Path
) -> None:
    proc = spawn(redis_url, "Settings", tmp_path / "worker.log", CLOCK_SKEW="30")
    try:
        assert wait_until(lambda: check(redis_url).returncode == 0, 30, 0.2)
        # expires in 20 s by the clients' (right) clock: a worker 30 s ahead still runs it
        assert client.enqueue("double", 4, _expires=20).result(timeout=10) == 8
        enqueued = time.time()
        job = client.enqueue("started_at", _defer_by=2)
        job.result(timeout=20)
        assert time.time() - enqueued >= 1.9  # not started early by the fast clock
    finally:
        proc.terminate()
        proc.wait(30)
    assert "clock is +30.0s off" in (tmp_path / "worker.log").read_text()


# ------------------------------------------------------------------- rolling deploy


def test_jobs_for_a_function_only_the_new_worker_has_run_on_it(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    old = start_worker([func(double)], name="old")
    new = start_worker([func(double), func(new_fn)], name="new")
    jobs = [client.enqueue("new_fn") for _ in range(10)]
    assert [job.result(timeout=60) for job in jobs] == ["new"] * 10
    assert not client.dead_letters()
    assert old.stats.handed_back >= 1
    # the worker counts a job once Redis acknowledged its result: a moment after a waiter sees it
    assert wait_until(lambda: new.stats.complete == 10, timeout=5)


def test_an_unknown_function_is_dead_lettered_after_the_grace_time(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    start_worker([func(double)], unknown_function_grace=1.5)
    job = client.enqueue("nobody_has_it")
    with pytest.raises(jobwire.JobFailed, match="unknown_function"):
        job.result(timeout=30)
    (letter,) = client.dead_letters()
    assert letter.reason == "unknown_function" and "handed back" in letter.message
