"""Security settings end to end: TLS with a test CA, a minimal ACL user, HMAC signing,
pickle refusal and size limits at both ends, each against real redis-server processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import redis

import jobwire
from jobwire import JobStatus, RedisSettings
from jobwire.keys import QueueKeys, acl_rule
from jobwire.worker import func
from tests.helpers.redis_harness import RedisServer
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker
from tests.worker.jobs import ok_loop


def echo(ctx: dict[str, Any], value: Any) -> Any:
    return value


def grow(ctx: dict[str, Any], size: int) -> str:
    return "y" * size


async def slow(ctx: dict[str, Any], seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


FUNCTIONS = [func(echo), func(grow), func(slow), func(ok_loop)]


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


# --------------------------------------------------------------------------- TLS


def test_tls_with_a_test_ca_for_both_clients_and_the_worker(
    redis_factory: Callable[..., RedisServer], start_worker: StartWorker
) -> None:
    server = redis_factory(tls=True)
    assert server.ca is not None and server.url.startswith("rediss://")
    ca = str(server.ca.ca)
    settings = RedisSettings.from_url(server.url, ssl_ca_certs=ca)
    start_worker(FUNCTIONS, url=settings)
    # the CA in the URL (what REDIS_URL can carry), or in RedisSettings
    with jobwire.Client.from_url(f"{server.url}?ssl_ca_certs={ca}") as client:
        assert client.enqueue(echo, "over tls").result(timeout=30) == "over tls"

    async def from_async() -> Any:
        async with jobwire.AsyncClient(settings=settings) as client:
            job = await client.enqueue(echo, {"tls": True}, _serializer="msgpack")
            return await job.result(timeout=30)

    assert run_async(from_async()) == {"tls": True}


def test_tls_refuses_an_unverified_server_or_a_plain_connection(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory(tls=True)
    fast = {"retries": 0, "connect_timeout": 2.0, "socket_timeout": 2.0}
    untrusted = jobwire.Client(settings=RedisSettings.from_url(server.url, **fast))  # no CA
    with pytest.raises(jobwire.RedisUnavailable, match=r"(?i)certificate"):
        untrusted.ping()
    plain_url = server.url.replace("rediss://", "redis://")
    plain = jobwire.Client(settings=RedisSettings.from_url(plain_url, **fast))
    with pytest.raises(jobwire.RedisUnavailable):
        plain.enqueue("f")
    untrusted.close()
    plain.close()


def test_mutual_tls_needs_a_client_certificate(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory(tls=True, tls_auth_clients="yes")
    assert server.ca is not None
    ca = server.ca
    base = RedisSettings.from_url(server.url, ssl_ca_certs=str(ca.ca), retries=0)
    anonymous = jobwire.Client(settings=base)
    with pytest.raises(jobwire.RedisUnavailable):
        anonymous.ping()
    anonymous.close()
    with_cert = base.with_options(ssl_certfile=str(ca.client_cert), ssl_keyfile=str(ca.client_key))
    with jobwire.Client(settings=with_cert) as client:
        assert client.enqueue("f").status() is JobStatus.QUEUED


# --------------------------------------------------------------------------- ACL


def test_the_documented_minimal_acl_rule_is_enough_for_everything(
    redis_factory: Callable[..., RedisServer], start_worker: StartWorker
) -> None:
    server = redis_factory()
    with redis.Redis(port=server.port) as admin:
        admin.execute_command("ACL", "SETUSER", "app", "on", ">s3cret", *acl_rule().split())
        admin.execute_command("ACL", "LOG", "RESET")
    url = f"redis://app:s3cret@127.0.0.1:{server.port}/0"
    worker = start_worker(FUNCTIONS, url=url, health_check_interval=0.5, unknown_function_grace=0.5)
    with jobwire.Client.from_url(url) as client:
        assert client.enqueue(echo, 1).result(timeout=30) == 1
        assert client.enqueue(echo, 2, _defer_by=0.2).result(timeout=30) == 2
        running = client.enqueue(slow, 30)
        assert wait_until(lambda: running.status() is JobStatus.IN_PROGRESS, timeout=30)
        assert running.abort(timeout=30) is True  # pub/sub on the queue's channel
        waiting = client.enqueue(echo, 3, _defer_by=60)
        assert waiting.abort() is True
        lost = client.enqueue("no_such_function")
        with pytest.raises(jobwire.JobFailed):
            lost.result(timeout=30)
        (letter,) = client.dead_letters()
        assert client.delete_dead_letter(letter.entry_id)
        assert client.queued_jobs() == [] and client.queue_size() == 0
        assert client.all_job_results() and client.queues() == ["default"]
        assert list(client.events(since="0", timeout=0.1))  # events, progress and stats too
        assert waiting.events() and waiting.progress() is None
        assert client.stats().total().executions >= 2
    info = subprocess.run(
        [sys.executable, "-m", "jobwire", "info"], capture_output=True, text=True, timeout=60,
        env={**os.environ, "REDIS_URL": url},
    )  # fmt: skip
    assert info.returncode == 0 and "default" in info.stdout, info.stderr
    assert worker.health()["complete"] >= 2
    with redis.Redis(port=server.port) as admin:
        assert admin.keys("jobwire:{default}:health:*")  # health records written
        denied = admin.execute_command("ACL", "LOG")
    assert denied == [], denied  # not one command or key was refused
    # and nothing beyond jobwire's keys and commands
    with redis.Redis.from_url(url) as app:
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.get("someone-else:key")
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.flushall()
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.config_get("*")


# ------------------------------------------------------------------------ signing


def test_signed_jobs_run_and_a_tampered_one_is_dead_lettered(
    redis_url: str, start_worker: StartWorker
) -> None:
    start_worker(FUNCTIONS, signing_key="k-2026")
    keys = QueueKeys("jobwire", "default")
    with jobwire.Client.from_url(redis_url, signing_key="k-2026") as client:
        assert client.enqueue(echo, "signed").result(timeout=30) == "signed"
        # a job is changed in Redis before a worker takes it: its signature no longer fits
        held = client.enqueue(echo, "pay 10", _defer_by=1.0)
        with redis.Redis.from_url(redis_url) as r:
            data = r.hget(keys.job(held.job_id), "data")
            assert data is not None and b"pay 10" in data
            r.hset(keys.job(held.job_id), "data", data.replace(b"pay 10", b"pay 99"))
        with pytest.raises(jobwire.JobFailed, match="bad_signature"):
            held.result(timeout=30)
        (letter,) = client.dead_letters()
        assert letter.reason == "bad_signature" and b"pay 99" in letter.data
    with jobwire.Client.from_url(redis_url) as unsigned:  # a producer without the key
        job = unsigned.enqueue(echo, "who am I")
        with pytest.raises(jobwire.JobFailed, match="bad_signature"):
            job.result(timeout=30)


# ------------------------------------------------------------------ size limits


def test_size_limits_at_both_ends(redis_url: str, start_worker: StartWorker) -> None:
    start_worker(FUNCTIONS, max_size=10_000)
    with jobwire.Client.from_url(redis_url) as client:
        with pytest.raises(jobwire.PayloadTooLarge):
            jobwire.Client.from_url(redis_url, max_size=1000).enqueue(echo, "x" * 2000)
        assert client.queue_size() == 0  # refused before anything was sent
        big = client.enqueue(echo, "x" * 20_000)  # within the client's 1 MiB, not the worker's
        with pytest.raises(jobwire.JobFailed, match="oversized"):
            big.result(timeout=30)
        assert client.dead_letters()[0].reason == "oversized"
        # a result too large for the worker to send fails the job instead of losing it
        grown = client.enqueue(grow, 20_000)
        with pytest.raises(jobwire.JobFailed) as failed:
            grown.result(timeout=30)
        assert "PayloadTooLarge" in failed.value.error.type
        assert client.enqueue(echo, "small").result(timeout=30) == "small"  # and it goes on
