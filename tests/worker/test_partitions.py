"""Sharded queues on the worker side: every partition served, fairly; a master's share.

A worker with ``partitions={"sharded": 3}`` serves the three partitions of ``sharded``; the
jobs, retries, deferred jobs and dead letters of each stay in their partition. On a
3-master cluster the partitions land on different masters, which then share the work.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis

import jobwire
from jobwire.health import assess
from jobwire.partitions import partition_names
from jobwire.worker import Retry
from tests.conftest import on_both
from tests.helpers.redis_harness import RedisCluster
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker

SHARDED = {"sharded": 3}


@pytest.fixture(params=["single", "cluster"])
def redis_url(request: pytest.FixtureRequest) -> str:
    return on_both(request)


async def where(ctx: dict[str, Any], n: int) -> tuple[int, str]:
    return n, ctx["queue_name"]


async def twice(ctx: dict[str, Any]) -> str:
    if ctx["job_try"] == 1:
        raise Retry(defer=0.05)
    return "second"


async def hang(ctx: dict[str, Any]) -> None:
    raise AssertionError("a paused queue must not run jobs")


def test_every_partition_is_served_and_each_job_runs_in_its_own(
    start_worker: StartWorker, redis_url: str
) -> None:
    start_worker(
        [where, twice],
        partitions=SHARDED,
        queue_name="sharded",
        max_jobs=20,
        unknown_function_grace=0,
    )
    with jobwire.Client.from_url(redis_url, partitions=SHARDED, queue_name="sharded") as client:
        jobs = [client.enqueue("where", n) for n in range(120)]
        later = client.enqueue("where", -1, _defer_by=0.2)
        retried = client.enqueue("twice")
        unknown = client.enqueue("no_such_function")
        assert all(j is not None for j in [*jobs, later, retried, unknown])
        assert [j.result(timeout=20) for j in jobs if j] == [[n, "sharded"] for n in range(120)]
        assert later is not None and later.result(timeout=10) == [-1, "sharded"]
        assert retried is not None and retried.result(timeout=10) == "second"
        # a dead letter is kept by its partition and found through the queue
        dead = wait_until(lambda: client.dead_letters(), timeout=10)
        assert [d.job_id for d in dead] == [unknown.job_id]  # type: ignore[union-attr]
        assert dead[0].queue_name == client._core.job_keys(dead[0].job_id, "sharded").queue
        assert client.queue_stats()["dead_letters"] == 1
        assert client.delete_dead_letter(dead[0].entry_id)
        assert client.queue_stats()["dead_letters"] == 0


async def started_at(ctx: dict[str, Any]) -> int:
    await asyncio.sleep(0.002)
    return time.monotonic_ns()


def test_a_worker_takes_from_every_partition_in_turn(
    start_worker: StartWorker, redis_url: str
) -> None:
    with jobwire.Client.from_url(redis_url, partitions=SHARDED, queue_name="sharded") as client:
        jobs = [j for j in client.enqueue_many([jobwire.JobSpec("started_at")] * 300) if j]
        start_worker([started_at], partitions=SHARDED, queue_name="sharded", max_jobs=5)
        starts = sorted((j.result(timeout=30), client._core.job_keys(j.job_id, None).queue)
                        for j in jobs)  # fmt: skip
    first = [partition for _, partition in starts[:60]]
    # no partition waits for another to drain: each has its share of the first fifth
    counts = {name: first.count(name) for name in partition_names("sharded", 3)}
    assert all(n >= 10 for n in counts.values()), counts


_running = {"now": 0, "most": 0}


async def counted(ctx: dict[str, Any]) -> None:
    _running["now"] += 1
    _running["most"] = max(_running["most"], _running["now"])
    await asyncio.sleep(0.003)
    _running["now"] -= 1


def test_several_partitions_never_run_more_than_max_jobs_together(
    start_worker: StartWorker, redis_url: str
) -> None:
    _running.update(now=0, most=0)
    with jobwire.Client.from_url(redis_url, partitions=SHARDED, queue_name="sharded") as client:
        jobs = [j for j in client.enqueue_many([jobwire.JobSpec("counted")] * 150) if j]
        start_worker([counted], partitions=SHARDED, queue_name="sharded", max_jobs=4)
        for job in jobs:
            job.result(timeout=30)
    assert _running["most"] == 4  # every slot used, never one more (three fetch loops)


async def sleepy(ctx: dict[str, Any]) -> None:
    await asyncio.sleep(30)


def test_running_jobs_of_every_partition_can_be_aborted(
    start_worker: StartWorker, redis_url: str
) -> None:
    start_worker([sleepy], partitions=SHARDED, queue_name="sharded")
    with jobwire.Client.from_url(redis_url, partitions=SHARDED, queue_name="sharded") as client:
        ids: dict[str, list[str]] = {}
        for n in range(100):  # two jobs in each partition
            ids.setdefault(client._core.job_keys(f"job-{n}", None).queue, []).append(f"job-{n}")
        chosen = [i for name in partition_names("sharded", 3) for i in ids[name][:2]]
        jobs = [
            j
            for j in client.enqueue_many([jobwire.JobSpec("sleepy", _job_id=i) for i in chosen])
            if j
        ]
        wait_until(lambda: len(client.running_jobs()) == 6, timeout=10)
        assert [j.abort(timeout=10) for j in jobs] == [True] * 6


def test_a_paused_sharded_queue_is_paused_in_every_partition(
    start_worker: StartWorker, redis_url: str
) -> None:
    with jobwire.Client.from_url(redis_url, partitions=SHARDED) as client:
        client.pause("sharded")
        start_worker([hang], partitions=SHARDED, queue_name="sharded")
        client.enqueue_many([jobwire.JobSpec("hang", _queue_name="sharded")] * 30)
        time.sleep(0.5)
        assert client.queue_stats("sharded")["in_progress"] == 0
        assert client.queue_size("sharded") == 30


def test_jobs_in_partitions_no_worker_serves_make_its_health_check_fail(
    start_worker: StartWorker, redis_url: str
) -> None:
    # producers shard the queue, the worker was not told: two partitions would wait forever
    with jobwire.Client.from_url(redis_url, partitions=SHARDED) as client:
        # all sent before the worker looks (else its first record may see only some)
        client.enqueue_many([jobwire.JobSpec("where", n, _queue_name="sharded") for n in range(30)])
        worker = start_worker([where], queue_name="sharded", health_check_interval=0.2)

        def problems() -> list[str]:
            records = client._run(client._core.health_records("sharded"))
            now = client._run(_redis_time(client))
            raw = records.get(worker.name)
            return [] if raw is None else list(assess(worker.name, raw, now).problems)

        found = wait_until(lambda: [p for p in problems() if "partitions" in p], timeout=10)
        assert found and partition_names("sharded", 3)[1] in found[0]


def _redis_time(client: jobwire.Client) -> Any:
    from jobwire.health import redis_time_ms

    return redis_time_ms(client._core.keys("sharded").stream)


@pytest.mark.parametrize("redis_url", ["cluster"], indirect=True)
def test_a_three_way_sharded_queue_shares_the_work_between_three_masters(
    start_worker: StartWorker, redis_cluster: RedisCluster, cluster_url: str
) -> None:
    masters = redis_cluster.primaries()
    assert len(masters) == 3
    owners = {redis_cluster.owner_of(f"{{{n}}}").port for n in partition_names("sharded", 3)}
    assert owners == {m.port for m in masters}  # one partition on each master
    start_worker([where], url=cluster_url, partitions=SHARDED, queue_name="sharded", max_jobs=30)
    with jobwire.Client.from_url(cluster_url, partitions=SHARDED, queue_name="sharded") as client:
        assert client.enqueue("where", 0).result(timeout=10) == [0, "sharded"]  # warmed up
        for m in masters:
            with redis.Redis(port=m.port) as r:
                r.config_resetstat()
        jobs = client.enqueue_many([jobwire.JobSpec("where", n) for n in range(1500)])
        assert [j.result(timeout=60) for j in jobs if j] == [[n, "sharded"] for n in range(1500)]
        calls = []
        for m in masters:
            with redis.Redis(port=m.port) as r:
                stats = r.info("commandstats")
                calls.append(sum(v["calls"] for v in stats.values()))
    shares = [c / sum(calls) for c in calls]
    assert all(abs(share - 1 / 3) <= 0.15 / 3 for share in shares), shares
