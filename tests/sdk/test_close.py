"""A closed client: every call refused (``ClientClosed``), waits in flight ended, nothing lost."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import jobwire
from jobwire import JobStatus
from tests.helpers.clients import ClientFactory


def test_a_closed_client_refuses_every_call_and_loses_nothing(make_client: ClientFactory) -> None:
    client = make_client()
    job = client.enqueue("f", 1)
    client.close()
    calls = {
        "enqueue": lambda: client.enqueue("f", 2),
        "enqueue_many": lambda: client.enqueue_many(["f"]),
        "status": job.status,
        "result": lambda: job.result(timeout=1),
        "queue_size": client.queue_size,
        "job": lambda: client.job(job.job_id).info(),
    }
    for name, call in calls.items():
        with pytest.raises(jobwire.ClientClosed):
            call()
        assert name  # (named for the failure message)
    client.close()  # closing again is harmless
    # the closed client wrote nothing more; another one sees the job as it was
    other = make_client()
    assert other.job(job.job_id).status() == JobStatus.QUEUED
    assert other.queue_size() == 1


def test_close_ends_a_wait_for_a_result_in_another_thread(make_client: ClientFactory) -> None:
    client = make_client()
    job = client.enqueue("nobody_runs_this")
    ended: list[tuple[type[BaseException], float]] = []

    def wait() -> None:
        started = time.monotonic()
        try:
            job.result(timeout=30)
        except BaseException as exc:
            ended.append((type(exc), time.monotonic() - started))

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)  # the wait is under way (blocked in Redis, or on the twin's store)
    closed_at = time.monotonic()
    client.close()
    waiter.join(10)
    assert not waiter.is_alive(), "the wait went on after close()"
    ((error, _),) = ended
    assert error is jobwire.ClientClosed
    # at once; a wait on a Redis Cluster (whose client sends the lost call again by itself)
    # at its next round trip, within the client's max_block of 4 s
    assert time.monotonic() - closed_at < (5 if "cluster" in make_client.kind else 1.5)
    assert make_client().job(job.job_id).status() == JobStatus.QUEUED


def test_closing_a_client_leaves_a_redis_client_of_its_own_open(redis_url: str) -> None:
    import redis

    own = redis.Redis.from_url(redis_url)
    client = jobwire.Client(own)
    client.enqueue("f")
    client.close()
    with pytest.raises(jobwire.ClientClosed):
        client.enqueue("f")
    assert own.ping()  # the caller's client is the caller's to close
    own.close()


def test_a_call_opening_its_connection_as_the_client_closes_leaves_no_socket_open(
    redis_url: str,
) -> None:
    import asyncio

    import redis

    admin = redis.Redis.from_url(redis_url)
    before = admin.info("clients")["connected_clients"]

    async def race() -> set[str]:
        ended, kept = set(), []
        for _ in range(10):
            client = jobwire.AsyncClient.from_url(redis_url)
            call = asyncio.ensure_future(client.ping())
            await asyncio.sleep(0)  # the call is opening its connection
            await asyncio.sleep(0)
            await client.close()
            try:
                await call
                ended.add("answered")
            except jobwire.ClientClosed:
                ended.add("ClientClosed")
            kept.append(client)  # (a closed client an app still holds)
        await asyncio.sleep(0.2)
        assert admin.info("clients")["connected_clients"] == before
        return ended

    assert asyncio.run(race()) <= {"answered", "ClientClosed"}
    admin.close()


def test_concurrent_enqueues_as_the_client_closes_get_a_job_or_client_closed(
    make_client: ClientFactory,
) -> None:
    client = make_client()
    outcomes: list[Any] = []
    lock = threading.Lock()

    def produce(n: int) -> None:
        for i in range(10_000):
            try:
                job = client.enqueue("f", _job_id=f"t{n}-{i}")
            except BaseException as exc:
                with lock:
                    outcomes.append(type(exc))
                return
            with lock:
                outcomes.append(job.job_id)

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # enqueues flow, coalesced in batches (where the client coalesces)
    client.close()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    errors = [o for o in outcomes if isinstance(o, type)]
    assert errors == [jobwire.ClientClosed] * 16  # each thread stopped by the close, so told
    # every enqueue that returned a job wrote it (one cut short may have been written too)
    other = make_client()
    enqueued = [o for o in outcomes if isinstance(o, str)]
    assert enqueued and all(other.job(j).status() == JobStatus.QUEUED for j in enqueued[::50])
    assert other.queue_size() >= len(enqueued)
