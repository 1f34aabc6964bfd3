"""Connections: Redis down and back, databases, ACL users, lost scripts, Sentinel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

import jobwire
from jobwire import JobStatus, RedisSettings
from jobwire.keys import QueueKeys
from tests.helpers.redis_harness import RedisServer
from tests.helpers.support import job_stored


def test_redis_down_raises_a_typed_error_then_recovers(
    make_redis_client: Any, redis_factory: Callable[..., RedisServer]
) -> None:
    server = redis_factory()
    client = make_redis_client(server.url)
    job = client.enqueue("f", 1)
    server.kill()
    for call in (lambda: client.enqueue("f"), job.status, client.queue_size, client.ping):
        with pytest.raises(jobwire.RedisUnavailable) as info:
            call()
        assert isinstance(info.value, jobwire.JobwireError)
        assert isinstance(info.value.__cause__, redis.ConnectionError)
    server.restart()
    assert client.ping() is True
    assert client.enqueue("f", 2).status() is JobStatus.QUEUED


def test_nothing_acknowledged_is_lost_across_a_restart_with_aof(
    make_redis_client: Any, redis_factory: Callable[..., RedisServer]
) -> None:
    server = redis_factory(appendonly=True, appendfsync="always")
    client = make_redis_client(server.url)
    jobs = [client.enqueue("f", i) for i in range(20)]
    server.kill()
    server.restart()
    assert client.queue_size() == 20
    assert all(job.status() is JobStatus.QUEUED for job in jobs)


def test_scripts_are_reloaded_after_a_flush(make_redis_client: Any, redis_url: str) -> None:
    client = make_redis_client()
    client.enqueue("f")
    with redis.Redis.from_url(redis_url) as r:
        r.script_flush()
    assert client.enqueue("f") is not None
    assert client.queue_size() == 2


def test_a_batch_after_a_flush_loads_each_script_once(
    make_redis_client: Any, redis_url: str
) -> None:
    client = make_redis_client()
    client.enqueue("f")
    with redis.Redis.from_url(redis_url) as r:
        r.script_flush()
        r.config_resetstat()
        jobs = client.enqueue_many([jobwire.JobSpec("f", n) for n in range(200)])
        assert all(jobs) and client.queue_size() == 201
        loads = r.info("commandstats").get("cmdstat_script|load", {}).get("calls")
    assert loads == 2  # the enqueue script, the queue-size script: once each, not per job


def test_database_number_from_the_url(make_redis_client: Any, redis_server: RedisServer) -> None:
    client = make_redis_client(f"redis://127.0.0.1:{redis_server.port}/3")
    client.enqueue("f")
    with redis.Redis(port=redis_server.port, db=3) as r3, redis.Redis(port=redis_server.port) as r0:
        assert r3.dbsize() > 0
        assert r0.keys("jobwire:*") == []


def test_acl_user_and_password(
    make_redis_client: Any, redis_factory: Callable[..., RedisServer]
) -> None:
    server = redis_factory()
    with redis.Redis(port=server.port) as admin:
        admin.acl_setuser("app", enabled=True, passwords=["+s3cret"], keys=["jobwire:*"],
                          commands=["+@all"])  # fmt: skip
    client = make_redis_client(f"redis://app:s3cret@127.0.0.1:{server.port}/0")
    assert client.enqueue("f").status() is JobStatus.QUEUED
    wrong = make_redis_client(f"redis://app:nope@127.0.0.1:{server.port}/0")
    with pytest.raises(jobwire.RedisAuthError, match=r"(?i)auth|password"):
        wrong.enqueue("f")
    outside = make_redis_client(f"redis://app:s3cret@127.0.0.1:{server.port}/0", prefix="other")
    with pytest.raises(jobwire.RedisCommandError):
        outside.enqueue("f")  # the ACL allows jobwire:* keys only


def test_sentinel(make_redis_client: Any, redis_factory: Callable[..., RedisServer]) -> None:
    primary = redis_factory()
    sentinel = redis_factory(sentinel_for=primary)
    client = make_redis_client(f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster/0")
    job = client.enqueue("f", 1)
    with redis.Redis(port=primary.port) as r:
        assert job_stored(r, QueueKeys("jobwire", "default"), job.job_id)


def test_settings_parse_urls_and_hide_passwords() -> None:
    s = RedisSettings.from_url("redis+sentinel://u:pw@h1:1,h2/main/2")
    assert s.sentinels == (("h1", 1), ("h2", 26379))
    assert (s.sentinel_master, s.database, s.username, s.password) == ("main", 2, "u", "pw")
    assert "pw" not in s.safe_url()
    assert RedisSettings.from_url("rediss://u:pw@host:6380/1").safe_url() == "rediss://host:6380/1"
    with pytest.raises(jobwire.InvalidArgument):
        RedisSettings.from_url("http://nope")


def test_tls_url_builds_a_tls_pool() -> None:
    client = jobwire.Client.from_url("rediss://127.0.0.1:1/0")
    connection_class = client.redis.connection_pool.connection_class
    assert issubclass(connection_class, redis.SSLConnection)
    client.close()
