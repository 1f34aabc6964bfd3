"""Looking at jobs from the command line: ``job``, ``failures``, ``info --json/--watch``,
an empty ``dead list``."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import orjson
import redis

import jobwire
from jobwire.health import redis_time_ms
from jobwire.keys import QueueKeys
from tests.helpers.workers import ROOT, jobwire_cli

SETTINGS = "tests.cli_settings.Settings"


def run_worker(url: str) -> None:
    done = jobwire_cli("worker", SETTINGS, "--burst", url=url)
    assert done.returncode == 0, done.stderr


def test_job_shows_status_outcome_and_history(redis_url: str) -> None:
    with jobwire.Client.from_url(redis_url) as client:
        ok = client.enqueue("double", 21)
        bad = client.enqueue("fail", "disk full")
        flaky = client.enqueue("flaky")
        lost = client.enqueue("no_such_function")
        run_worker(redis_url)
        waiting = client.enqueue("double", 5, _defer_by=60, _queue_name="later")
        assert ok and bad and flaky and lost and waiting

    out = jobwire_cli("job", ok.job_id, url=redis_url)
    assert out.returncode == 0, out.stderr
    for line in ("queue: default", "status: complete", "outcome: succeeded",
                 "function: double", "tries: 1", "result: 42"):  # fmt: skip
        assert f"  {line}\n" in out.stdout, (line, out.stdout)
    assert "  args: (not kept once a job has finished)\n" in out.stdout

    out = jobwire_cli("job", bad.job_id, url=redis_url).stdout
    assert "  outcome: failed (builtins.ValueError: disk full)\n" in out
    assert "  args: (not shown once a job has ended; kept for job.retry() with its result)\n" in out
    assert "  error: builtins.ValueError: disk full\n" in out
    assert "history (latest 1, newest first):" in out
    assert "Traceback (most recent call last):" in out and "raise ValueError(message)" in out

    out = jobwire_cli("job", flaky.job_id, url=redis_url).stdout
    assert "history (latest 2, newest first):" in out
    history = out.split("history", 1)[1]
    assert history.index("try 2 ") < history.index("try 1 ")  # newest first
    assert "failed in" in history and "Retry: retry requested" in history

    # waiting, in another queue: found without --queue, with its arguments
    out = jobwire_cli("job", waiting.job_id, url=redis_url).stdout
    assert "  queue: later\n  status: deferred\n" in out and "  args: 5\n" in out
    assert "  deferred until: " in out and "  next try: 1\n" in out

    # a dead-lettered job, once its short-lived result is gone, is found as a dead letter
    with redis.Redis.from_url(redis_url) as r:
        r.delete(QueueKeys("jobwire", "default").results(lost.job_id))
    out = jobwire_cli("job", lost.job_id, url=redis_url).stdout
    assert "status: dead letter " in out and "(unknown_function)" in out
    assert "jobwire dead requeue " in out


def test_an_unknown_job_names_the_queues_searched(redis_url: str) -> None:
    done = jobwire_cli("job", "nope", "--queue", "emails", url=redis_url)
    assert done.returncode == 1 and done.stdout == ""
    assert (
        done.stderr == "jobwire: no job 'nope' in queue emails; pass --queue Q to look in another\n"
    )
    assert "in queue default;" in jobwire_cli("job", "nope", url=redis_url).stderr


def test_failures_lists_failed_executions_and_dead_letters(redis_url: str) -> None:
    with jobwire.Client.from_url(redis_url) as client:
        client.enqueue("double", 1)
        bad = client.enqueue("fail", "disk full")
        flaky = client.enqueue("flaky")
        lost = client.enqueue("no_such_function", _queue_name="other")
        run_worker(redis_url)
        done = jobwire_cli("worker", SETTINGS, "--burst", "--queue", "other", url=redis_url)
        assert done.returncode == 0 and bad and flaky and lost
    out = jobwire_cli("failures", url=redis_url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3, lines  # the two failed executions and the dead letter, no success
    assert "queue=other" in lines[0] and f"job={lost.job_id}  no_such_function  try=-" in lines[0]
    assert "dead letter (unknown_function): " in lines[0]
    (failed,) = [line for line in lines if bad.job_id in line]
    assert "queue=default" in failed and "  fail  try=1  builtins.ValueError: disk full" in failed
    (retried,) = [line for line in lines if flaky.job_id in line]
    assert "try=1  jobwire.worker.functions.Retry" in retried
    times = [line[:27] for line in lines]
    assert times == sorted(times, reverse=True)  # newest first
    one = jobwire_cli("failures", "--queue", "default", "--limit", "1", url=redis_url).stdout
    assert one.count("\n") == 1 and "queue=default" in one
    empty = jobwire_cli("failures", "--queue", "quiet", url=redis_url)
    assert empty.returncode == 0 and empty.stdout == ""
    assert empty.stderr == "no failures kept in quiet\n"


def test_an_empty_dead_letter_list_says_so(redis_url: str) -> None:
    done = jobwire_cli("dead", "list", url=redis_url)
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == "no dead letters in default\n"


def _health(worker: str, queue: str, now_ms: int, **fields: object) -> bytes:
    loop = {"state": "running", "last_progress_ms": now_ms, "stall_after_ms": 60_000}
    record = {
        "worker": worker,
        "queue": queue,
        "time_ms": now_ms,
        "interval_ms": 5000,
        "complete": 7,
        "failed": 1,
        "retried": 2,
        "ongoing": 0,
        "loops": {"fetch": loop},
    }
    return orjson.dumps({**record, **fields})


def test_info_json_has_queues_workers_and_warnings(redis_url: str) -> None:
    with jobwire.Client.from_url(redis_url) as client:
        client.enqueue("double", 1)
        client.enqueue("double", 2, _defer_by=60)
        now = client._run(redis_time_ms())
    keys = QueueKeys("jobwire", "default")
    with redis.Redis.from_url(redis_url) as r:
        r.set(keys.health("good"), _health("good", "default", now))
        r.set(keys.health("evicting"), _health("evicting", "default", now,
                                                maxmemory_policy="allkeys-lru"))  # fmt: skip
        r.set(
            keys.health("wedged"),
            _health(
                "wedged", "default", now, loops={"fetch": {"state": "failing", "error": "boom"}}
            ),
        )
        r.set(keys.health("gone"), _health("gone", "default", now - 60_000))
    done = jobwire_cli("info", "--json", url=redis_url)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    (queue,) = data["queues"]
    assert {k: queue[k] for k in ("name", "queued", "deferred", "in_progress", "dead_letters")} == {
        "name": "default", "queued": 1, "deferred": 1, "in_progress": 0, "dead_letters": 0
    }  # fmt: skip
    workers = {w["name"]: w for w in queue["workers"]}
    assert sorted(workers) == ["evicting", "good", "wedged"] and queue["stale_workers"] == 1
    assert workers["good"]["healthy"] and workers["good"]["complete"] == 7
    assert not workers["wedged"]["healthy"] and workers["wedged"]["problems"]
    assert "maxmemory-policy" in workers["evicting"]["warnings"][0]
    warnings = " | ".join(data["warnings"])
    assert (
        "worker wedged is unhealthy" in warnings and "worker evicting: Redis maxmemory" in warnings
    )


def _read_until(fd: int, needle: bytes, count: int, timeout: float = 20) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while out.count(needle) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out += chunk
    return out


def test_info_watch_redraws_until_ctrl_c(redis_url: str) -> None:
    with jobwire.Client.from_url(redis_url) as client:
        client.enqueue("double", 1)
    env = {**os.environ, "REDIS_URL": redis_url}
    command = [sys.executable, "-m", "jobwire", "info", "--watch", "0.2"]
    # into a pipe: redrawn, never a screen-clearing escape
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = _read_until(proc.stdout.fileno(), b"queue default: 1 queued", 2)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0
    assert out.count(b"(Ctrl-C to stop)") >= 2 and b"\x1b" not in out
    # onto a terminal: the screen is cleared before each redraw
    main, tty = pty.openpty()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=tty)
    os.close(tty)
    try:
        out = _read_until(main, b"queue default: 1 queued", 2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        os.close(main)
    assert out.count(b"\x1b[H\x1b[2J") >= 2
