"""One client shared by many threads (sync) or many tasks (async): nothing lost or doubled."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

import jobwire
from jobwire.testing import AsyncMemoryClient, MemoryClient

from .conftest import Worker


def drained_ids(worker: Worker) -> list[str]:
    ids: list[str] = []
    while batch := worker.take(500):
        ids += [d.job_id for d in batch]
    return ids


def test_sync_client_shared_by_20_threads(redis_url: str, redis_worker: Worker) -> None:
    with jobwire.Client.from_url(redis_url) as client:

        def produce(thread: int) -> list[str]:
            return [client.enqueue("f", thread, i).job_id for i in range(100)]

        with ThreadPoolExecutor(20) as pool:
            produced = [jid for ids in pool.map(produce, range(20)) for jid in ids]
        assert len(set(produced)) == 2000
        assert client.queue_size() == 2000
    taken = drained_ids(redis_worker)
    assert sorted(taken) == sorted(produced)  # each job delivered exactly once


@pytest.mark.parametrize("kind", ["redis", "memory"])
def test_sync_uniqueness_under_20_concurrent_threads(
    request: pytest.FixtureRequest, kind: str
) -> None:
    make = (
        MemoryClient
        if kind == "memory"
        else lambda: jobwire.Client.from_url(request.getfixturevalue("redis_url"))
    )
    with make() as client:
        with ThreadPoolExecutor(20) as pool:
            jobs = list(pool.map(lambda i: client.enqueue("f", i, _job_id="the-one"), range(20)))
        assert sum(job is not None for job in jobs) == 1
        assert client.queue_size() == 1


def test_async_client_shared_by_200_tasks(redis_url: str, redis_worker: Worker) -> None:
    async def main() -> list[str]:
        async with jobwire.AsyncClient.from_url(redis_url) as client:

            async def produce(task: int) -> list[str]:
                return [(await client.enqueue("f", task, i)).job_id for i in range(10)]

            batches = await asyncio.gather(*(produce(t) for t in range(200)))
            assert await client.queue_size() == 2000
            return [jid for batch in batches for jid in batch]

    produced = asyncio.run(main())
    assert len(set(produced)) == 2000
    assert sorted(drained_ids(redis_worker)) == sorted(produced)


@pytest.mark.parametrize("kind", ["redis", "memory"])
def test_async_uniqueness_under_20_concurrent_tasks(
    request: pytest.FixtureRequest, kind: str
) -> None:
    url = "" if kind == "memory" else request.getfixturevalue("redis_url")
    make = AsyncMemoryClient.from_url if kind == "memory" else jobwire.AsyncClient.from_url

    async def main() -> list[jobwire.AsyncJob | None]:
        async with make(url) as client:
            return await asyncio.gather(
                *(client.enqueue("f", i, _job_id="the-one") for i in range(20))
            )

    jobs = asyncio.run(main())
    assert sum(job is not None for job in jobs) == 1


def test_concurrent_waiters_all_wake(redis_url: str, redis_worker: Worker) -> None:
    async def main() -> list[object]:
        async with jobwire.AsyncClient.from_url(redis_url) as client:
            job = await client.enqueue("f")
            (d,) = redis_worker.take()
            waiters = [asyncio.ensure_future(job.result(timeout=30)) for _ in range(20)]
            await asyncio.sleep(0.3)
            await asyncio.to_thread(redis_worker.succeed, d, "all of you")
            return list(await asyncio.gather(*waiters))

    assert asyncio.run(main()) == ["all of you"] * 20
