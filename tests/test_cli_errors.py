"""The command line facing trouble: Redis down, bad input, hostile data, a closed pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

import jobwire
from jobwire.keys import QueueKeys
from tests.helpers.redis_harness import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]
ESC = "\x1b[31m"  # an ANSI escape: must never reach the terminal raw


def cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "jobwire", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [("info",), ("info", "--watch", "0.1"), ("job", "x"), ("failures",),
     ("dead", "list"), ("dead", "delete", "1-0"), ("dead", "requeue", "1-0")],
)  # fmt: skip
def test_redis_down_is_one_line_and_exit_3(args: tuple[str, ...]) -> None:
    done = cli(*args, url=f"redis://127.0.0.1:{free_port()}/0")
    assert done.returncode == 3, done
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr


def test_bad_input_is_one_line_and_exit_2(redis_url: str) -> None:
    done = cli("dead", "requeue", "not-an-entry", url=redis_url)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "entry id" in done.stderr


def test_an_unknown_entry_says_where_it_looked(redis_url: str) -> None:
    done = cli("dead", "delete", "1-0", url=redis_url)
    assert done.returncode == 1 and "no dead letter '1-0'" in done.stderr


def test_hostile_data_is_escaped_in_every_listing(
    redis_url: str, redis_factory: Callable[..., RedisServer]
) -> None:
    keys = QueueKeys("jobwire", "default")
    with redis.Redis.from_url(redis_url) as r:
        r.sadd("jobwire:queues", "default", f"evil{ESC}", "bad{name")
        r.xadd(
            keys.dead,
            {"job_id": b"\xff" + ESC.encode(), "reason": ESC, "message": f"boom{ESC}",
             "data": b"\x00", "at_ms": "not a time"},
        )  # fmt: skip
        r.set(keys.health("w" + ESC), b"{not json")
        r.set(keys.health("w2"), b"{}")
    for args in (("info",), ("info", "--json"), ("dead", "list"), ("failures",)):
        done = cli(*args, url=redis_url)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout and "\x1b" not in done.stderr
        assert "Traceback" not in done.stderr
    listing = cli("dead", "list", url=redis_url).stdout
    assert "\\x1b[31m" in listing and "\\xff" in listing  # shown, escaped
    assert "bad{name: cannot be read" in cli("info", url=redis_url).stdout


@pytest.mark.parametrize(
    "command", ["dead list --limit 3000", "failures --limit 3000", "info --watch 0.05"]
)
def test_a_closed_pipe_ends_quietly(redis_url: str, command: str) -> None:
    with redis.Redis.from_url(redis_url) as r:
        keys = QueueKeys("jobwire", "default")
        r.sadd("jobwire:queues", "default")
        with r.pipeline(transaction=False) as pipe:
            for i in range(3000):
                fields = {"job_id": f"j{i}", "reason": "x", "message": "m" * 50, "at_ms": 0}
                pipe.xadd(keys.dead, fields)
            pipe.execute()
    env = {**os.environ, "REDIS_URL": redis_url}
    shell = f"{sys.executable} -m jobwire {command} | head -1"
    done = subprocess.run(
        shell, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_hostile_data_is_escaped_in_job_and_failures(redis_url: str) -> None:
    with jobwire.Client.from_url(redis_url) as client:
        bad = client.enqueue("fail", f"boom{ESC}", _job_id=f"id{ESC}")
        evil = client.enqueue(f"evil{ESC}", _job_id=f"evil-id{ESC}")  # no such function
        done = cli("worker", "tests.cli_settings.Settings", "--burst", url=redis_url)
        assert done.returncode == 0, done.stderr
        waiting = client.enqueue("double", ESC, _job_id=f"waiting{ESC}", _defer_by=60)
        assert bad and evil and waiting
    keys = QueueKeys("jobwire", "default")
    with redis.Redis.from_url(redis_url) as r:  # and results no worker wrote
        r.rpush(keys.results("garbage"), b"\xff{not a result", ESC.encode())
        r.set(keys.results("not-a-list"), b"x")
        r.hset(keys.job("odd"), mapping={"data": b"\x00\xff", "state": "queued"})
        r.set(keys.job("wrong-type"), b"x")
    outputs = [cli("failures", url=redis_url)]
    ids = (bad.job_id, evil.job_id, waiting.job_id, "odd")
    outputs += [cli("job", job_id, url=redis_url) for job_id in ids]
    for done in outputs:
        assert done.returncode == 0, done
        assert "\x1b" not in done.stdout + done.stderr, done
        assert "Traceback" not in done.stderr
    failures, job_bad, job_evil, job_waiting, job_odd = (d.stdout for d in outputs)
    assert "job=id\\x1b[31m  fail  try=1  builtins.ValueError: boom\\x1b[31m" in failures
    assert "job=evil-id\\x1b[31m  evil\\x1b[31m  try=-  dead letter" in failures
    assert "(2 kept results could not be read)" in outputs[0].stderr
    assert "boom\\x1b[31m" in job_bad and "job id\\x1b[31m" in job_bad
    assert "  function: evil\\x1b[31m\n" in job_evil
    assert "args: '\\x1b[31m'" in job_waiting
    assert "job data: cannot be read" in job_odd
    wrong = cli("job", "wrong-type", url=redis_url)  # a key of the wrong type: said, not fatal
    assert wrong.returncode == 1 and "WRONGTYPE" in wrong.stderr and "no job" in wrong.stderr
