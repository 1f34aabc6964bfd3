"""Replicated acknowledgement (``RedisSettings(wait_replicas=N)``) and cluster connections.

With ``wait_replicas`` an enqueue returns only once Redis ``WAIT`` says that many replicas
have the job, and raises ``ReplicationTimeout`` (the job written on the master all the
same) when fewer confirm it in time: on one Redis with a replica and on the cluster.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

import jobwire
from jobwire import JobSpec, JobStatus, RedisSettings
from jobwire.keys import QueueKeys
from jobwire.partitions import partition_names
from tests.helpers.redis_harness import RedisCluster, RedisServer, wait_replicated
from tests.helpers.support import job_stored


@pytest.fixture
def primary_with_replica(
    redis_factory: Callable[..., RedisServer],
) -> tuple[RedisServer, RedisServer]:
    primary = redis_factory(extra_args=["--repl-diskless-sync-delay", "0"])
    replica = redis_factory(extra_args=["--replicaof", "127.0.0.1", str(primary.port)])
    wait_replicated(primary)
    return primary, replica


def test_an_enqueue_returns_once_a_replica_has_the_job(
    make_redis_client: Any, primary_with_replica: tuple[RedisServer, RedisServer]
) -> None:
    primary, replica = primary_with_replica
    settings = RedisSettings.from_url(primary.url, wait_replicas=1, wait_timeout=2)
    client = make_redis_client(settings)
    job = client.enqueue("f", 1)
    many = client.enqueue_many([JobSpec("f", (n,)) for n in range(20)])
    with redis.Redis(port=replica.port) as r:  # read the replica at once: no waiting here
        keys = QueueKeys("jobwire", "default")
        assert job_stored(r, keys, job.job_id)
        assert all(job_stored(r, keys, j.job_id) for j in many)


def test_fewer_replicas_than_asked_is_a_replication_timeout_and_the_job_exists(
    make_redis_client: Any, primary_with_replica: tuple[RedisServer, RedisServer]
) -> None:
    primary, _ = primary_with_replica
    settings = RedisSettings.from_url(primary.url, wait_replicas=2, wait_timeout=0.3)
    client = make_redis_client(settings)
    started = time.monotonic()
    with pytest.raises(jobwire.ReplicationTimeout, match="of 2 replicas confirmed") as caught:
        client.enqueue("f", _job_id="order-7")
    assert 0.25 < time.monotonic() - started < 3
    error = caught.value
    assert isinstance(error, jobwire.RedisError)
    assert (error.job_ids, error.wanted) == (("order-7",), 2) and error.acknowledged < 2
    # the write happened on the master: the job is queued, and a retry is refused as taken
    plain = make_redis_client(primary.url)
    assert plain.job("order-7").status() is JobStatus.QUEUED
    assert plain.enqueue("f", _job_id="order-7") is None
    with pytest.raises(jobwire.ReplicationTimeout) as many:
        client.enqueue_many([JobSpec("f", _job_id="a"), JobSpec("f", _job_id="b")])
    assert many.value.job_ids == ("a", "b")


def test_wait_on_the_cluster(make_redis_client: Any, redis_cluster: RedisCluster,
                             cluster_url: str) -> None:  # fmt: skip
    client = make_redis_client(RedisSettings.from_url(cluster_url, wait_replicas=1))
    jobs = [client.enqueue("f", _queue_name=f"q{n}") for n in range(6)]  # several masters
    assert all(job.status() is JobStatus.QUEUED for job in jobs)
    for job in jobs:
        keys = QueueKeys("jobwire", job.queue_name)
        replica = redis_cluster.replica_of(redis_cluster.owner_of(keys.stream))
        with redis.Redis(port=replica.port) as r:
            r.execute_command("READONLY")
            assert job_stored(r, keys, job.job_id)
    strict = make_redis_client(
        RedisSettings.from_url(cluster_url, wait_replicas=2, wait_timeout=0.2)
    )
    with pytest.raises(jobwire.ReplicationTimeout, match="of 2 replicas"):
        strict.enqueue("f")  # every master has one replica


def test_a_timeout_names_only_the_jobs_of_the_master_whose_replica_lagged(
    make_redis_client: Any, redis_cluster: RedisCluster, cluster_url: str
) -> None:
    settings = RedisSettings.from_url(cluster_url, wait_replicas=1, wait_timeout=0.3)
    client = make_redis_client(settings, partitions={"sharded": 3})
    names = partition_names("sharded", 3)
    ids: dict[str, list[str]] = {}
    for n in range(60):  # two jobs in each partition (each on its own master)
        ids.setdefault(client._core.job_keys(f"j{n}", "sharded").queue, []).append(f"j{n}")
    chosen = [i for name in names for i in ids[name][:2]]
    lagging = redis_cluster.replica_of(redis_cluster.owner_of(f"{{{names[1]}}}"))
    assert lagging.pid is not None
    os.kill(lagging.pid, signal.SIGSTOP)  # for well under the node timeout: no failover
    try:
        with pytest.raises(jobwire.ReplicationTimeout) as info:
            client.enqueue_many([JobSpec("f", _job_id=i, _queue_name="sharded") for i in chosen])
    finally:
        os.kill(lagging.pid, signal.SIGCONT)
    assert info.value.job_ids == tuple(ids[names[1]][:2])
    assert info.value.acknowledged == 0
    assert client.queue_size("sharded") == 6  # every job was written


def test_cluster_urls_and_settings_are_checked() -> None:
    s = RedisSettings.from_url("redis+cluster://u:pw@h1:7000,h2/0", wait_replicas=1)
    assert s.cluster_nodes == (("h1", 7000), ("h2", 6379)) and s.is_cluster
    assert (s.username, s.password, s.wait_replicas) == ("u", "pw", 1)
    assert "pw" not in s.safe_url() and s.safe_url().startswith("redis+cluster://h1:7000")
    assert RedisSettings.from_url("rediss+cluster://h:1?ssl_ca_certs=/ca.crt").ssl
    bad = {
        "redis+cluster://h:1/2": "database 0 only",
        "redis+cluster://h:x": "port",
        "redis+cluster://h:1?db=1": "unknown option",
    }
    for url, message in bad.items():
        with pytest.raises(jobwire.InvalidArgument, match=message):
            RedisSettings.from_url(url)
    with pytest.raises(jobwire.InvalidArgument, match="from_url"):
        RedisSettings(url="redis+cluster://h:1")
    with pytest.raises(jobwire.InvalidArgument, match="wait_timeout"):
        RedisSettings(wait_replicas=1, wait_timeout=10, socket_timeout=5)
    with pytest.raises(jobwire.InvalidArgument, match="wait_replicas"):
        RedisSettings(wait_replicas=-1)


def test_a_plain_client_on_a_cluster_node_says_to_use_a_cluster_url(
    redis_cluster: RedisCluster, cluster_url: str
) -> None:
    node = redis_cluster.owner_of("jobwire:{default}:stream")
    other = next(f"q{n}" for n in range(100) if redis_cluster.owner_of(f"x{{q{n}}}") is not node)
    client = jobwire.Client.from_url(node.url)
    with pytest.raises(jobwire.RedisCommandError, match=r"redis\+cluster://"):
        client.enqueue("f", _queue_name=other)  # another master's slot: MOVED
    client.close()
