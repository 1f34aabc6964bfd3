"""Other languages and mixed formats: a Node.js producer, the vectors checked in Node, and one
queue carrying JSON (Node), msgpack (async client) and pickle (sync client) jobs."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import jobwire
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker

NODE_DIR = Path(__file__).resolve().parents[2] / "examples" / "node_producer"
HEADERS_SEEN: list[dict[str, str]] = []
NODE_TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def add(ctx: dict[str, Any], a: int, b: int) -> int:
    HEADERS_SEEN.append(ctx["headers"])
    return a + b


async def greet(ctx: dict[str, Any], name: str, punctuation: str = ".") -> str:
    return f"hello {name}{punctuation}"


class NodeJobError(RuntimeError):
    pass


async def fail(ctx: dict[str, Any], why: str) -> None:
    raise NodeJobError(f"failed {why}")


def echo(ctx: dict[str, Any], value: Any) -> dict[str, Any]:
    return {"value": value, "headers": ctx["headers"]}


@pytest.fixture(scope="session")
def node_project() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are needed for the interop tests")
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=NODE_DIR,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return NODE_DIR


def test_golden_vectors_and_schema_checked_by_node(node_project: Path) -> None:
    done = subprocess.run(
        ["node", "check_vectors.mjs"], cwd=node_project, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(" passed, 0 failed")
    assert int(done.stdout.split()[-4]) >= 90


def run_node_producer(node_project: Path, redis_url: str) -> list[dict[str, Any]]:
    """Run the Node example producer (with ``NODE_TRACEPARENT``); its result lines."""
    done = subprocess.run(
        ["node", "producer.mjs"],
        cwd=node_project,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "REDIS_URL": redis_url, "TRACEPARENT": NODE_TRACEPARENT},
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_node_producer_with_a_python_worker(
    node_project: Path, start_worker: StartWorker, redis_url: str
) -> None:
    HEADERS_SEEN.clear()
    start_worker([add, greet, fail])
    results = run_node_producer(node_project, redis_url)
    assert [(r["function"], r["outcome"], r["value"]) for r in results] == [
        ("add", "success", 5),
        ("add", "success", 42),
        ("greet", "success", "hello Node!"),
        ("fail", "error", None),
    ]
    error = results[3]["error"]  # the Node side reads the portable error record
    assert error["type"] == "tests.worker.test_interop.NodeJobError"
    assert error["message"] == "failed from node" and "NodeJobError" in error["traceback"]
    assert HEADERS_SEEN == [{"traceparent": NODE_TRACEPARENT}] * 2


def node_json_job(redis_url: str, job_id: str) -> None:
    """A JSON job written with plain commands, the envelope in the hash (SPEC §12.3)."""
    import redis

    envelope = {
        "v": "1.0",
        "fmt": "json",
        "id": job_id,
        "function": "echo",
        "queue": "default",
        "try": 1,
        "enqueued_ms": 1,
        "headers": {"traceparent": "00-json-01"},
        "args": ["from node"],
        "kwargs": {},
    }
    with redis.Redis.from_url(redis_url) as r:
        pipe = r.pipeline(transaction=True)
        pipe.hset(
            f"jobwire:{{default}}:job:{job_id}",
            mapping={"state": "queued", "tries": 0, "data": json.dumps(envelope)},
        )
        pipe.xadd("jobwire:{default}:stream", {"job": job_id})
        pipe.execute()


def enqueue_mixed(redis_url: str) -> dict[str, str]:
    node_json_job(redis_url, "node-json")

    async def from_async() -> str:
        async with jobwire.AsyncClient.from_url(redis_url) as client:
            job = await client.enqueue(
                "echo",
                b"\x00bytes",
                _serializer="msgpack",
                _headers={"traceparent": "00-msgpack-01"},
            )
            assert job is not None
            return job.job_id

    with jobwire.Client.from_url(redis_url, accept=("json", "msgpack", "pickle")) as client:
        pickled = client.enqueue(
            "echo", {1, 2}, _serializer="pickle", _headers={"traceparent": "00-pickle-01"}
        )
    assert pickled is not None
    return {"json": "node-json", "msgpack": asyncio.run(from_async()), "pickle": pickled.job_id}


def test_one_queue_three_formats_with_a_worker_that_accepts_pickle(
    start_worker: StartWorker, redis_url: str
) -> None:
    ids = enqueue_mixed(redis_url)
    start_worker([echo], accept=("json", "msgpack", "pickle"))
    with jobwire.Client.from_url(redis_url, accept=("json", "msgpack", "pickle")) as client:
        values = {fmt: client.job(job_id).result(timeout=30) for fmt, job_id in ids.items()}
        formats = {fmt: client.job(job_id).result_info().format for fmt, job_id in ids.items()}
    assert values["json"] == {"value": "from node", "headers": {"traceparent": "00-json-01"}}
    assert values["msgpack"] == {"value": b"\x00bytes", "headers": {"traceparent": "00-msgpack-01"}}
    assert values["pickle"] == {"value": {1, 2}, "headers": {"traceparent": "00-pickle-01"}}
    assert formats == {"json": "json", "msgpack": "msgpack", "pickle": "pickle"}  # each its own


def test_a_worker_without_pickle_dead_letters_only_the_pickle_job(
    start_worker: StartWorker, redis_url: str
) -> None:
    ids = enqueue_mixed(redis_url)
    start_worker([echo])  # default accept: json and msgpack
    with jobwire.Client.from_url(redis_url) as client:
        assert client.job(ids["json"]).result(timeout=30)["value"] == "from node"
        assert client.job(ids["msgpack"]).result(timeout=30)["value"] == b"\x00bytes"
        with pytest.raises(jobwire.JobFailed, match="format_refused"):
            client.job(ids["pickle"]).result(timeout=30)
        (letter,) = client.dead_letters()
        assert letter.job_id == ids["pickle"] and letter.reason == "format_refused"


@pytest.mark.parametrize("fmt", ["json", "msgpack", "pickle"])
def test_trace_headers_reach_the_job_and_every_hook_unchanged(
    fmt: str, start_worker: StartWorker, redis_url: str
) -> None:
    seen: dict[str, dict[str, str]] = {}

    def hook(name: str) -> Any:
        return lambda ctx: seen.__setitem__(name, dict(ctx["headers"]))

    start_worker(
        [echo],
        accept=("json", "msgpack", "pickle"),
        on_job_start=hook("start"),
        on_job_end=hook("end"),
        after_job_end=hook("after"),
    )
    headers = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=ünï,other=1",
        "baggage": "user=42",
    }
    with jobwire.Client.from_url(redis_url, accept=("json", "msgpack", "pickle")) as client:
        job = client.enqueue("echo", 1, _serializer=fmt, _headers=headers)
        assert job is not None
        assert job.result(timeout=30)["headers"] == headers
    assert wait_until(lambda: len(seen) == 3)  # after_job_end runs once the result is stored
    assert seen == {"start": headers, "end": headers, "after": headers}
