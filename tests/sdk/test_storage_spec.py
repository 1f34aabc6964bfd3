"""wire/SPEC.md section 12 agrees with the code, and its redis-cli example really works."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

import jobwire
import jobwire.wire
from jobwire import JobStatus
from jobwire.keys import QueueKeys, queues_key
from jobwire.scripts import ENQUEUE, SCRIPTS
from tests.helpers.redis_harness import RedisServer

from .conftest import Worker

SPEC = (Path(jobwire.wire.__file__).parent / "SPEC.md").read_text(encoding="utf-8")
STORAGE = SPEC[SPEC.index("## 12. Redis storage") :]


def block_after(marker: str, lang: str) -> str:
    start = STORAGE.index(marker)
    match = re.compile(rf"```{lang}\n(.*?)```", re.S).search(STORAGE, start)
    assert match is not None
    return match.group(1)


def test_spec_has_the_exact_enqueue_script() -> None:
    assert block_after("enqueue.lua", "lua").strip() == ENQUEUE.source.strip()


def test_spec_lists_every_script_with_its_keys_and_arguments() -> None:
    for script in SCRIPTS.values():
        row = f"| `{script.name}` | {', '.join(script.keys)} | {', '.join(script.argv)} |"
        assert row in STORAGE, script.name


def test_spec_names_every_key() -> None:
    keys = QueueKeys("P", "Q")
    for name in (
        keys.job("ID"), keys.stream, keys.wake, keys.deferred, keys.results("ID"),
        keys.done("ID"), keys.dead, keys.events, keys.lifecycle, keys.once("NAME"),
        keys.health("W"), keys.paused, queues_key("P"),
    ):  # fmt: skip
        assert f"`{name}`" in STORAGE, name


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli not installed")
def test_redis_cli_worked_example_enqueues_a_job_the_client_can_read(
    redis_server: RedisServer, redis_url: str, redis_worker: Worker
) -> None:
    worker = redis_worker
    example = block_after("redis-cli example: begin", "sh")
    lines = [line for line in example.splitlines() if line.startswith("redis-cli ")]
    assert len(lines) >= 2
    for line in lines:
        argv = shlex.split(line)
        subprocess.run([argv[0], "-p", str(redis_server.port), *argv[1:]], check=True,
                       capture_output=True)  # fmt: skip

    with jobwire.Client.from_url(redis_url) as client:
        job = client.job("order-42")
        assert job.status() is JobStatus.QUEUED
        info = job.info()
        assert (info.function, info.args) == ("send_receipt", (42,))
        assert "default" in client.queues()
        (d,) = worker.take()
        assert d.job_id == "order-42"
        worker.succeed(d, {"sent": True})
        assert job.result(timeout=5) == {"sent": True}

    # and the documented way to read the result back needs nothing but redis-cli
    read = shlex.split("redis-cli LINDEX 'jobwire:{default}:results:order-42' 0")
    out = subprocess.run([read[0], "-p", str(redis_server.port), *read[1:]], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    result = json.loads(out)
    assert result["outcome"] == "success" and result["value"] == {"sent": True}
