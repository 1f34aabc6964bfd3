"""Sharded queues on the client side: one logical queue, K partitions, one behaviour.

Every client kind takes ``partitions=``; the twins keep a sharded queue as one queue (no
slots in memory), the Redis clients spread its jobs over the partitions and sum them back.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

import jobwire
from jobwire import JobStatus
from jobwire.partitions import SLOT_WINDOW, hash_slot, partition_names
from tests.helpers.clients import ClientFactory

SHARDED = {"sharded": 3}


def test_partition_names_spread_over_the_slots() -> None:
    for queue in ("emails", "default", "a", "reports.v2"):
        names = partition_names(queue, 3)
        assert names[0] == queue  # jobs stored before sharding stay served
        assert len(set(names)) == 3
        start = hash_slot(queue)
        for i, name in enumerate(names[1:], 1):
            target = (start + i * 16384 // 3) % 16384
            assert (hash_slot(name) - target) % 16384 < SLOT_WINDOW
        assert partition_names(queue, 3) == names  # deterministic: what foreign producers compute
    # the worked example of wire/SPEC.md, section 12.10
    assert partition_names("emails", 3) == ("emails", "emails#1.140", "emails#2.1337")
    assert [hash_slot(n) for n in partition_names("emails", 3)] == [3728, 9213, 14674]


@pytest.mark.parametrize(
    "bad", [{"q": 0}, {"q": 257}, {"q": "3"}, {"q": True}, {"a#b": 2}, {"": 2}, ["q"]]
)
def test_a_bad_partitions_setting_is_refused(make_client: ClientFactory, bad: Any) -> None:
    with pytest.raises(jobwire.InvalidArgument, match="partitions"):
        make_client(partitions=bad)


def test_a_sharded_queue_is_one_queue_to_its_client(make_client: ClientFactory) -> None:
    client = make_client(partitions=SHARDED)
    jobs = [client.enqueue("f", n, _queue_name="sharded") for n in range(30)]
    deferred = client.enqueue("f", -1, _queue_name="sharded", _defer_by=60)
    assert all(j is not None and j.queue_name == "sharded" for j in [*jobs, deferred])
    assert client.queue_size("sharded") == 31
    stats = client.queue_stats("sharded")
    assert (stats["queued"], stats["deferred"]) == (30, 1)
    listed = client.queued_jobs("sharded")
    assert sorted(j.job_id for j in listed) == sorted(j.job_id for j in [*jobs, deferred] if j)
    assert {j.queue_name for j in listed} == {"sharded"}
    assert [j.status for j in client.queued_jobs("sharded", limit=7)] == [JobStatus.QUEUED] * 7 + [
        JobStatus.DEFERRED
    ]
    # every operation on a job finds its partition, through any handle of it
    first = jobs[0]
    assert first is not None
    assert client.job(first.job_id, "sharded").status() == JobStatus.QUEUED
    assert client.job(first.job_id, "sharded").info().args == (0,)
    # job ids are unique across the partitions
    assert client.enqueue("f", _job_id=first.job_id, _queue_name="sharded") is None
    assert client.queues() == ["sharded"]
    assert client.pause("sharded") and client.is_paused("sharded")
    assert client.resume("sharded") and not client.is_paused("sharded")
    assert first.abort() is True
    assert client.queue_size("sharded") == 30


def test_the_jobs_of_a_sharded_queue_are_spread_over_its_partitions(
    make_redis_client: ClientFactory, redis_url: str
) -> None:
    client = make_redis_client(partitions=SHARDED)
    for n in range(300):
        client.enqueue("f", n, _queue_name="sharded")
    plain = make_redis_client()  # no partitions: each partition is a queue of its own
    names = partition_names("sharded", 3)
    assert plain.queues() == sorted(names)
    sizes = [plain.queue_size(name) for name in names]
    assert sum(sizes) == 300
    assert min(sizes) > 60  # CRC16 of random ids: about 100 each
    with redis.Redis.from_url(redis_url) as r:
        assert r.xlen(f"jobwire:{{{names[1]}}}:stream") == sizes[1]
