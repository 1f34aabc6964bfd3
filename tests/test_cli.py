"""The jobwire command (``jobwire.cli``): worker (--burst, --check, --watch), info, dead, demo;
the console script and ``python -m jobwire`` are the same program."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import jobwire
from jobwire import JobStatus
from tests.helpers.redis_harness import free_port
from tests.helpers.support import wait_until
from tests.helpers.workers import ROOT, jobwire_cli

SETTINGS = "tests.cli_settings.Settings"


@pytest.fixture
def client(redis_url: str) -> Iterator[jobwire.Client]:
    with jobwire.Client.from_url(redis_url) as c:
        yield c


def test_console_script_and_module_agree() -> None:
    script = shutil.which("jobwire", path=str(Path(sys.executable).parent))
    assert script is not None, "the jobwire console script is not installed"
    a = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    b = subprocess.run(
        [sys.executable, "-m", "jobwire", "--version"], capture_output=True, text=True, check=True
    )
    assert a.stdout == b.stdout
    assert a.stdout.startswith(f"jobwire {jobwire.__version__} (wire 1.0;")


def test_worker_burst_runs_the_queue_and_exits(redis_url: str, client: jobwire.Client) -> None:
    jobs = [client.enqueue("double", i) for i in range(5)]
    done = jobwire_cli("worker", SETTINGS, "--burst", url=redis_url)
    assert done.returncode == 0, done.stderr
    assert [j.result(timeout=1) for j in jobs] == [0, 2, 4, 6, 8]
    # one log line per job: id, function, arguments, try, outcome, duration
    lines = [line for line in done.stderr.splitlines() if " double(" in line]
    assert len(lines) == 5
    assert all(" try=1 success (ran " in line for line in lines)
    assert any(f"{jobs[3].job_id} double(3) try=1 success (ran " in line for line in lines)


def test_check_is_healthy_only_while_a_worker_runs(redis_url: str) -> None:
    assert jobwire_cli("worker", SETTINGS, "--check", url=redis_url).returncode == 1
    env = {**os.environ, "REDIS_URL": redis_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobwire", "worker", SETTINGS],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(
            lambda: jobwire_cli("worker", SETTINGS, "--check", url=redis_url).returncode == 0,
            timeout=30,
            interval=0.2,
        )
        info = jobwire_cli("info", url=redis_url)
        assert "queue default:" in info.stdout and "worker " in info.stdout
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    # the health record expires after its interval once the worker is gone
    assert wait_until(
        lambda: jobwire_cli("worker", SETTINGS, "--check", url=redis_url).returncode == 1,
        timeout=30,
        interval=0.5,
    )


def test_info_lists_queue_counts(redis_url: str, client: jobwire.Client) -> None:
    client.enqueue("double", 1)
    client.enqueue("double", 2, _defer_by=60)
    out = jobwire_cli("info", url=redis_url).stdout
    assert out.splitlines()[0] == f"redis {redis_url}"  # which server was read
    assert "queue default: 1 queued, 1 deferred, 0 in progress, 0 dead letters\n" in out
    client.pause()
    out = jobwire_cli("info", url=redis_url).stdout
    assert "0 dead letters (paused: workers take none of its jobs)" in out


def test_dead_letters_from_the_command_line(redis_url: str, client: jobwire.Client) -> None:
    job = client.enqueue("no_such_function", 3)
    assert jobwire_cli("worker", SETTINGS, "--burst", url=redis_url).returncode == 0
    listing = jobwire_cli("dead", "list", url=redis_url).stdout
    assert "unknown_function" in listing and job.job_id in listing
    entry = listing.split()[0]
    requeued = jobwire_cli("dead", "requeue", entry, url=redis_url)
    assert requeued.returncode == 0 and job.job_id in requeued.stdout
    assert job.status() is JobStatus.QUEUED
    assert jobwire_cli("worker", SETTINGS, "--burst", url=redis_url).returncode == 0
    entry = jobwire_cli("dead", "list", url=redis_url).stdout.split()[0]
    deleted = jobwire_cli("dead", "delete", entry, url=redis_url)
    assert deleted.stdout.strip() == "deleted from default"
    assert jobwire_cli("dead", "list", url=redis_url).stdout == ""


def test_watch_restarts_the_worker_on_code_changes(redis_url: str, tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    module = tmp_path / "watched_tasks.py"
    module.write_text(
        "async def version(ctx):\n    return 1\n\nclass Settings:\n    functions = (version,)\n"
    )
    # the flags reach the restarted worker: without --url it would wait for this Redis
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    command = [
        sys.executable, "-m", "jobwire", "worker", "watched_tasks.Settings",
        "--watch", str(tmp_path), "--url", redis_url, "--queue", "watched",
        "--max-jobs", "2", "--log-format", "json",
    ]  # fmt: skip
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with jobwire.Client.from_url(redis_url) as client:
            job = client.enqueue("version", _queue_name="watched")
            assert job is not None and job.result(timeout=30) == 1
            module.write_text(module.read_text().replace("return 1", "return 2"))
            time.sleep(0.5)

            def reloaded() -> bool:
                job = client.enqueue("version", _queue_name="watched")
                return job is not None and job.result(timeout=10) == 2

            assert wait_until(reloaded, timeout=30, interval=0.5)
    finally:
        proc.terminate()
        proc.wait(30)


def test_demo_runs_with_its_own_redis(tmp_path: Path) -> None:
    done = jobwire_cli("demo", url=None, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "REDIS_URL is not set: started a throwaway redis-server" in out
    for line in (
        "greet (json)",
        "word_count (msgpack)",
        "count_primes (process)",
        "flaky (retries)",
        "greet (deferred 1s)",
    ):
        assert line in out
    assert "'succeeded on try 3'" in out and "3245" in out
    assert "stopped the throwaway redis-server" in out


def test_demo_uses_redis_url_and_leaves_nothing_behind(redis_url: str, tmp_path: Path) -> None:
    done = jobwire_cli("demo", url=redis_url, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "using REDIS_URL=" in done.stdout
    import redis

    with redis.Redis.from_url(redis_url) as r:
        assert r.keys("jobwire-demo:*") == []
