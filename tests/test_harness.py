"""The real-Redis harness itself: ports, persistence options, faults and cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from jobwire.wire import FORMATS, Codec, JobEnvelope
from tests.helpers.redis_harness import FORBIDDEN_PORT, RedisServer, pid_alive

ROOT = Path(__file__).resolve().parents[1]


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.mark.parametrize("fmt", FORMATS)
def test_wire_envelopes_round_trip_through_real_redis(redis_url: str, fmt: str) -> None:
    codec = Codec(accept=FORMATS)
    job = JobEnvelope(
        id=f"job-{fmt}",
        function="tasks.resize",
        enqueued_ms=1_767_225_600_000,
        format=fmt,  # type: ignore[arg-type]
        args=("ünïcode", 2**63, [1.5, None]),
        kwargs={"flag": True},
        headers={"traceparent": "00-abc-def-01"},
    )
    data = codec.encode_job(job)
    with redis.Redis.from_url(redis_url) as r:
        r.set("wire:test", data)
        entry_id = r.xadd("wire:stream", {"job": data})
        stored = r.get("wire:test")
        ((_, fields),) = r.xrange("wire:stream", entry_id, entry_id)
    assert stored == data
    assert fields[b"job"] == data
    assert codec.decode_job(stored) == job


def test_servers_use_a_private_port(redis_server: RedisServer) -> None:
    assert redis_server.port != FORBIDDEN_PORT
    assert redis_server.url.startswith("redis://127.0.0.1:")


def test_no_persistence_by_default(redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    with redis.Redis.from_url(server.url) as r:
        assert r.config_get("appendonly")["appendonly"] == "no"
        assert r.config_get("save")["save"] == ""
        r.set("k", "v")
    server.kill()
    server.restart()
    with redis.Redis.from_url(server.url) as r:
        assert r.get("k") is None


def test_restart_with_aof_keeps_data_and_a_fresh_connection_works(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory(appendonly=True, appendfsync="always")
    client = redis.Redis.from_url(server.url, socket_timeout=2)
    client.set("durable", b"yes")
    server.kill()
    assert not server.running
    with pytest.raises(redis.ConnectionError):
        client.get("durable")
    server.restart()
    with redis.Redis.from_url(server.url) as fresh:
        assert fresh.get("durable") == b"yes"
    # the old client's pool reconnects by itself once the server is back
    assert client.get("durable") == b"yes"
    client.close()


def test_stop_is_graceful_and_restart_reuses_the_port(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory()
    port, pid = server.port, server.pid
    server.stop()
    assert pid is not None and not pid_alive(pid)
    server.restart()
    assert server.port == port and server.running


_CHILD = textwrap.dedent(
    """
    import time
    from tests.helpers.redis_harness import RedisServer
    server = RedisServer().start()
    print(server.pid, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_servers_die_with_the_process_that_started_them(
    sig: signal.Signals, tmp_path: Path
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        cwd=ROOT,  # so that ``tests.helpers`` is importable
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # a killed owner cannot clean up
    )
    try:
        assert child.stdout is not None
        redis_pid = int(child.stdout.readline())
        assert pid_alive(redis_pid)
        os.kill(child.pid, sig)
        child.wait(10)
        assert wait_until(lambda: not pid_alive(redis_pid)), "redis-server outlived its owner"
    finally:
        child.kill()
        child.wait()


def test_missing_redis_server_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import redis_harness

    monkeypatch.setattr(redis_harness, "REDIS_SERVER", None)
    with pytest.raises(redis_harness.RedisServerError, match="apt-get install redis-server"):
        redis_harness.RedisServer()
