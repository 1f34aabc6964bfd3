"""``jobwire worker`` for operators: flags over the settings, waiting for Redis, JSON logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import redis

import jobwire
from jobwire import JobStatus
from tests.helpers.redis_harness import RedisServer, free_port
from tests.helpers.support import wait_until
from tests.helpers.workers import ROOT, jobwire_cli

SETTINGS = "tests.cli_settings.Settings"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def spawn(*args: str, url: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobwire", "worker", SETTINGS, *args],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def test_flags_override_the_settings(redis_url: str) -> None:
    with jobwire.Client.from_url(redis_url) as client:
        a = client.enqueue("double", 1, _queue_name="a")
        b = client.enqueue("double", 2, _queue_name="b")
        elsewhere = client.enqueue("double", 3)  # the settings' queue, not served now
        nowhere = f"redis://127.0.0.1:{free_port()}/0"  # what the settings would use
        done = jobwire_cli(
            "worker", SETTINGS, "--burst", "--url", redis_url, "--queue", "a", "--queue", "b",
            "--max-jobs", "3", url=nowhere,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert (a.result(timeout=1), b.result(timeout=1)) == (2, 4)
        assert elsewhere.status() is JobStatus.QUEUED
        assert "queues a, b, 3 functions, max_jobs=3, redis " + redis_url in done.stderr


def test_bad_flags_are_one_line_and_exit_2(redis_url: str) -> None:
    bad = (("--max-jobs", "0"), ("--queue", "bad{name"), ("--url", "http://x"),
           ("--log-format", "xml"), ("--max-jobs", "many"))  # fmt: skip
    for args in bad:
        done = jobwire_cli("worker", SETTINGS, "--burst", *args, url=redis_url)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_the_worker_waits_for_redis_then_runs_jobs(tmp_path: Path) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    # --check never waits: no Redis is an unhealthy answer at once
    check = jobwire_cli("worker", SETTINGS, "--check", url=url, timeout=20)
    assert check.returncode == 1 and "unhealthy" in check.stdout
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        proc = spawn(url=url, log=log)
    try:
        unreachable = f"Redis at 127.0.0.1:{port} is unreachable ("

        def waiting_lines() -> list[str]:
            return [line for line in log_path.read_text().splitlines() if unreachable in line]

        assert wait_until(lambda: len(waiting_lines()) >= 2, timeout=20, interval=0.1)
        first, second = waiting_lines()[:2]
        assert "WARNING" in first and first.endswith("trying again in 0.5s")
        assert second.endswith("trying again in 1.0s")  # a backoff, one line per attempt
        assert proc.poll() is None
        server = RedisServer()
        server.port = port  # the port the worker waits for
        server.restart()
        try:
            with jobwire.Client.from_url(url) as client:
                assert client.enqueue("double", 21).result(timeout=30) == 42
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            server.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log_path.read_text()


def test_a_stop_while_waiting_for_redis_is_prompt_and_clean(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        proc = spawn("--burst", url=url, log=log)  # a burst worker waits as well
    try:
        assert wait_until(lambda: "unreachable" in log_path.read_text(), timeout=20)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert time.monotonic() - started < 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert "stopped before Redis could be reached" in text and "Traceback" not in text


def test_refused_credentials_are_not_waited_for(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory()
    with redis.Redis.from_url(server.url) as r:
        r.config_set("requirepass", "s3cret")
    wrong = f"redis://:nope@127.0.0.1:{server.port}/0"
    started = time.monotonic()
    done = jobwire_cli("worker", SETTINGS, url=wrong, timeout=30)
    assert done.returncode == 3, done.stderr
    assert time.monotonic() - started < 10
    assert done.stderr.count("\n") == 1 and "refused the credentials" in done.stderr
    assert "unreachable" not in done.stderr and "Traceback" not in done.stderr


def test_json_log_lines(redis_url: str) -> None:
    with jobwire.Client.from_url(redis_url) as client:
        ok = client.enqueue("double", 4, _headers={"traceparent": TRACEPARENT})
        bad = client.enqueue("fail", "boom\x1b[31m", _job_id="bad\x1b[31m")
        assert ok is not None and bad is not None
        done = jobwire_cli("worker", SETTINGS, "--burst", "--log-format", "json", url=redis_url)
    assert done.returncode == 0, done.stderr
    lines: list[dict[str, Any]] = [json.loads(line) for line in done.stderr.splitlines()]
    assert "\x1b" not in done.stderr  # escaped in the JSON text itself
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys()
        assert line["time"].endswith("Z") and "T" in line["time"]
    (success,) = [line for line in lines if line.get("job_id") == ok.job_id]
    assert success["level"] == "INFO" and success["logger"] == "jobwire.worker"
    assert (success["function"], success["queue"], success["try"]) == ("double", "default", 1)
    assert success["outcome"] == "success" and success["duration"] >= 0
    assert success["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert "exc_info" not in success
    (failure,) = [line for line in lines if line.get("job_id") == "bad\x1b[31m"]
    assert failure["level"] == "ERROR" and failure["outcome"] == "error"
    assert failure["error_type"] == "builtins.ValueError"
    assert failure["error_message"] == "boom\x1b[31m"
    assert "trace_id" not in failure
    assert "\n" not in failure["message"]  # the traceback has a field of its own
    assert failure["exc_info"].startswith("Traceback (most recent call last):")
    assert "raise ValueError(message)" in failure["exc_info"]
