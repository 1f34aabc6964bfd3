"""wire/SPEC.md section 12 agrees with the code, and its redis-cli example really works."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import jobwire
import jobwire.wire
from jobwire import JobStatus
from jobwire.keys import QueueKeys, queues_key
from jobwire.scripts import ENQUEUE, SCRIPTS
from tests.helpers.redis_harness import RedisServer
from tests.helpers.support import index_key

from .conftest import Worker

SPEC = (Path(jobwire.wire.__file__).parent / "SPEC.md").read_text(encoding="utf-8")
STORAGE = SPEC[SPEC.index("## 12. Redis storage") :]


def block_after(marker: str, lang: str) -> str:
    start = STORAGE.index(marker)
    match = re.compile(rf"```{lang}\n(.*?)```", re.S).search(STORAGE, start)
    assert match is not None
    return match.group(1)


NODE_ENQUEUE = Path(__file__).resolve().parents[2] / "examples" / "node_producer" / "enqueue.lua"


def test_spec_and_the_node_producer_have_the_exact_enqueue_script() -> None:
    assert block_after("enqueue.lua", "lua").strip() == ENQUEUE.source.strip()
    assert NODE_ENQUEUE.read_text(encoding="utf-8").strip() == ENQUEUE.source.strip()


def test_spec_lists_every_script_with_its_keys_and_arguments() -> None:
    for script in SCRIPTS.values():
        row = f"| `{script.name}` | {', '.join(script.keys)} | {', '.join(script.argv)} |"
        assert row in STORAGE, script.name


def test_spec_names_every_key() -> None:
    keys = QueueKeys("P", "Q")
    for name in (
        keys.job("ID"), keys.stream, keys.wake, keys.deferred, keys.results("ID"),
        keys.done("ID"), keys.failed("ID"), keys.dead, keys.events, keys.lifecycle,
        keys.once("NAME"), keys.health("W"), keys.paused, queues_key("P"), "P:{Q}:queued:XX",
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


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli not installed")
def test_redis_cli_script_example_stores_the_compact_layout_a_worker_runs(
    redis_server: RedisServer, redis_url: str, redis_worker: Worker, tmp_path: Path
) -> None:
    (tmp_path / "enqueue.lua").write_text(block_after("enqueue.lua", "lua"), encoding="utf-8")
    evaluate, *rest = block_after("redis-cli script example: begin", "sh").strip().splitlines()
    replies = []
    for line in (evaluate, *rest):
        line = line.replace("redis-cli ", f"redis-cli -p {redis_server.port} ", 1)
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        replies.append(done.stdout.strip())
    assert replies[0] == "1"  # queued

    keys = QueueKeys("jobwire", "default")
    with jobwire.Client.from_url(redis_url) as client:
        raw = client.redis
        # the envelope rides in the stream entry; no hash, the index has the entry id
        assert not raw.exists(keys.job("order-43"))
        digest = hashlib.sha1(b"order-43").hexdigest()
        entry = raw.hget(f"jobwire:{{default}}:queued:{digest[:2]}", "order-43")
        assert b"send_receipt" in raw.xrange(keys.stream, entry, entry)[0][1][b"data"]
        assert "default" in client.queues()
        job = client.job("order-43")
        info = job.info()
        assert info is not None and (info.function, info.args) == ("send_receipt", (43,))
        (d,) = redis_worker.take()
        assert (d.job_id, json.loads(d.data)["args"]) == ("order-43", [43])
        redis_worker.succeed(d, "sent")
        assert job.result(timeout=5) == "sent"


def test_the_envelope_moves_with_the_job_and_the_hash_stays_compact(
    redis_url: str, redis_worker: Worker
) -> None:
    """SPEC 12.1: in the entry while queued or running, in the hash while deferred; a job
    queued to start now has no hash, only an index field, until it starts."""
    keys = QueueKeys("jobwire", "default")
    r = redis_worker.client.redis

    def where(job_id: str) -> tuple[str, bytes | None]:
        """Where the envelope is, and the encoding of the job's hash (b"index": none)."""
        data, entry = r.hmget(keys.job(job_id), "data", "entry")
        if data is not None:
            return "hash", r.object("encoding", keys.job(job_id))
        indexed = r.hget(index_key(keys, job_id), job_id)
        if entry is None and indexed is not None:
            assert not r.exists(keys.job(job_id))
            assert r.object("encoding", index_key(keys, job_id)) == b"listpack"
            entry, _, token = indexed.partition(b" ")  # a given id's call keeps its token
            assert len(token) == 16
        found = r.xrange(keys.stream, entry, entry) if entry else []
        encoding = b"index" if indexed is not None else r.object("encoding", keys.job(job_id))
        return ("entry" if found and b"data" in found[0][1] else "nowhere"), encoding

    with jobwire.Client.from_url(redis_url) as client:
        now = client.enqueue("f", "x" * 500, _job_id="now")
        later = client.enqueue("f", "y", _job_id="later", _defer_by=0.2)
        assert now and later
        assert where("now") == ("entry", b"index")  # even with a 500-byte argument
        assert client.job("now").status() is JobStatus.QUEUED
        assert client.job("now").info().args == ("x" * 500,)
        assert where("later")[0] == "hash"
        (d,) = redis_worker.take()
        assert where("now") == ("entry", b"listpack")  # running: its hash, from now on
        assert redis_worker.retry(d, RuntimeError("again"), defer=60)
        assert where("now")[0] == "hash"  # deferred again
        time.sleep(0.25)
        redis_worker.promote()
        assert where("later") == ("entry", b"listpack")
        (d,) = redis_worker.take()
        assert d.job_id == "later" and json.loads(d.data)["args"] == ["y"]
        assert redis_worker.retry(d, RuntimeError("again"))  # queued again at once
        assert where("later") == ("entry", b"listpack")
        (d,) = redis_worker.take()
        assert d.job_id == "later" and d.tries == 2 and json.loads(d.data)["args"] == ["y"]
        redis_worker.fail(d, RuntimeError("for good"))
        # the failed job's envelope is kept for a retry, from the entry it was in
        assert client.job("later").retry() is not None
        assert client.job("later").info().args == ("y",)
        assert client.enqueue("f", _job_id="expiring", _expires=60)
        assert where("expiring") == ("entry", b"listpack")  # its hash expires: it needs one


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli not installed")
def test_redis_cli_deferred_example_is_shown_deferred_and_runs_when_due(
    redis_server: RedisServer, redis_url: str, redis_worker: Worker
) -> None:
    for line in block_after("redis-cli deferred example: begin", "sh").strip().splitlines():
        argv = shlex.split(line)
        subprocess.run([argv[0], "-p", str(redis_server.port), *argv[1:]], check=True,
                       capture_output=True)  # fmt: skip
    with jobwire.Client.from_url(redis_url) as client:
        job = client.job("order-44")
        info = job.info()
        assert info is not None and info.status is JobStatus.DEFERRED
        assert info.defer_until is not None and info.args == (44,)
        redis_worker.promote()  # its time (in the example, long past) has come
        (d,) = redis_worker.take()
        assert d.job_id == "order-44" and json.loads(d.data)["args"] == [44]
        redis_worker.succeed(d, 88)
        assert job.result(timeout=5) == 88
