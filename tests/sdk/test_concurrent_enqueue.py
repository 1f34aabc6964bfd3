"""Concurrent enqueues coalesced into pipelined round trips (``jobwire.coalesce``).

Many tasks sharing an ``AsyncClient``, or many threads sharing a ``Client``, send what they
enqueue at the same time together; each caller still gets its own handle, its own ``None``
for a taken id and its own error, on one Redis, through a lost connection, with replicated
acknowledgement, with tracing and on a Redis Cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis

import jobwire
from jobwire import RedisSettings
from jobwire.coalesce import MAX_FLYING
from jobwire.keys import QueueKeys
from tests.helpers.proxy import FaultProxy
from tests.helpers.redis_harness import RedisServer, wait_replicated


def gather(
    client: jobwire.AsyncClient,
    calls: list[Callable[[], Awaitable[Any]]],
    after: Callable[[], Any] = lambda: None,
    warm: Callable[[], Awaitable[Any]] | None = None,
) -> list[Any]:
    """Run the calls as concurrent tasks; each one's result or exception, in order.

    The first task's enqueue goes out alone; the others start while it is in flight, so
    they leave together in the next round trip. ``warm`` runs first, alone (a client's
    first enqueue to a queue also registers the queue: another shape of request);
    ``after`` runs before the client closes.
    """

    async def main() -> list[Any]:
        try:
            if warm is not None:
                await warm()
            results = await asyncio.gather(*(call() for call in calls), return_exceptions=True)
            after()
            return results
        finally:
            await client.close()

    return asyncio.run(main())


def in_threads(count: int, call: Callable[[int], Any]) -> list[Any]:
    """Run ``call(i)`` in ``count`` threads started together; results (or exceptions)."""
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = call(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def connections(url: str) -> int:
    with redis.Redis.from_url(url) as r:
        return int(r.info("clients")["connected_clients"]) - 1  # not this one


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "one-by-one"])
def test_100_concurrent_async_enqueues_land_once_each_with_its_own_handle(
    redis_url: str, coalesce: bool
) -> None:
    client = jobwire.AsyncClient.from_url(redis_url, coalesce=coalesce)
    counted: list[int] = []  # Redis's connections before and after the burst

    async def warm() -> None:
        await client.enqueue("f", "warm")
        counted.append(connections(redis_url))

    calls = [lambda i=i: client.enqueue("f", i) for i in range(100)]
    jobs = gather(client, calls, lambda: counted.append(connections(redis_url)), warm)  # type: ignore[arg-type]
    assert len({job.job_id for job in jobs}) == 100
    with jobwire.Client.from_url(redis_url) as check:
        queued = [info for info in check.queued_jobs() if info.args != ("warm",)]
        assert sorted(info.job_id for info in queued) == sorted(job.job_id for job in jobs)
        args = {info.job_id: info.args for info in queued}
        assert [args[job.job_id] for job in jobs] == [(i,) for i in range(100)]  # its own
    opened = counted[1] - counted[0]
    if coalesce:  # one round trip at a time: the one connection, not one per task
        assert opened <= 1
    else:
        assert opened > 2


def test_tasks_enqueuing_again_at_once_keep_their_order_and_bound_the_connections(
    redis_url: str,
) -> None:
    """Batches leave while others are in flight (SPLIT): each job lands once, each task's
    jobs in the order it enqueued them, on a bounded number of connections."""
    client = jobwire.AsyncClient.from_url(redis_url)
    counted: list[int] = []

    async def warm() -> None:
        await client.enqueue("f", "warm")
        counted.append(connections(redis_url))

    async def task(t: int) -> list[str]:
        return [(await client.enqueue("f", t, i)).job_id for i in range(6)]  # type: ignore[union-attr]

    calls = [lambda t=t: task(t) for t in range(100)]
    ids = gather(client, calls, lambda: counted.append(connections(redis_url)), warm)  # type: ignore[arg-type]
    assert len({i for each in ids for i in each}) == 600
    with jobwire.Client.from_url(redis_url) as check:
        queued = [info.args for info in check.queued_jobs(limit=1000) if info.args != ("warm",)]
    assert sorted(queued) == [(t, i) for t in range(100) for i in range(6)]
    for t in range(100):  # the stream's order is each task's own
        assert [i for (u, i) in queued if u == t] == list(range(6))
    assert counted[1] - counted[0] <= MAX_FLYING


def break_queue(redis_url: str) -> None:
    """Make Redis refuse enqueues to queue ``broken`` (its stream key is a string)."""
    with redis.Redis.from_url(redis_url) as r:
        r.set(QueueKeys("jobwire", "broken").stream, "not a stream")


def mixed_calls() -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Enqueue arguments of a mixed batch: fine, duplicate, taken, invalid and refused jobs.

    The client enqueued job ``taken`` and a job to queue ``broken`` before (so its
    requests are the plain script calls of queues it has registered).
    """
    return [
        (("f", 0), {}),
        (("f", 1), {}),
        (("f", 2), {"_job_id": "twice"}),
        (("f", 3), {"_job_id": "twice"}),
        (("f", 4), {"_job_id": "taken"}),
        (("f", 5), {"_job_try": 0}),  # refused before anything is sent
        (("f", object()), {}),  # cannot be encoded as JSON
        (("f", 7), {"_queue_name": "broken"}),  # Redis refuses it (WRONGTYPE)
        (("f", 8), {}),
    ]


def check_mixed(redis_url: str, outcomes: list[Any]) -> None:
    fine = [outcomes[i] for i in (0, 1, 8)]
    assert all(isinstance(job, (jobwire.Job, jobwire.AsyncJob)) for job in fine)
    twice = outcomes[2:4]
    assert sorted(job is None for job in twice) == [False, True]  # one of the two got the id
    assert outcomes[4] is None  # taken by the job enqueued before
    assert isinstance(outcomes[5], jobwire.InvalidArgument)
    assert isinstance(outcomes[6], jobwire.UnsupportedValue)
    assert isinstance(outcomes[7], jobwire.RedisCommandError)
    with jobwire.Client.from_url(redis_url) as check:
        queued = {info.job_id: info.args for info in check.queued_jobs()}
    assert queued.pop("twice") == ((2,) if twice[0] is not None else (3,))  # the winner's
    assert queued == {"taken": (), fine[0].job_id: (0,), fine[1].job_id: (1,),
                      fine[2].job_id: (8,)}  # fmt: skip


def test_a_mixed_async_batch_affects_only_the_callers_of_the_bad_jobs(redis_url: str) -> None:
    client = jobwire.AsyncClient.from_url(redis_url)

    async def warm() -> None:
        await client.enqueue("f", _job_id="taken")
        await client.enqueue("f", _queue_name="broken")
        break_queue(redis_url)

    batch = [lambda a=a, k=k: client.enqueue(*a, **k) for a, k in mixed_calls()]
    check_mixed(redis_url, gather(client, batch, warm=warm))  # type: ignore[arg-type]


def test_a_mixed_batch_of_threads_affects_only_the_callers_of_the_bad_jobs(
    redis_url: str,
) -> None:
    calls = mixed_calls()
    with jobwire.Client.from_url(redis_url) as client:
        client.enqueue("f", _job_id="taken")
        client.enqueue("f", _queue_name="broken")
        break_queue(redis_url)
        outcomes = in_threads(len(calls), lambda i: client.enqueue(*calls[i][0], **calls[i][1]))
    check_mixed(redis_url, outcomes)


def test_16_threads_each_get_their_own_jobs_in_their_own_order(redis_url: str) -> None:
    with jobwire.Client.from_url(redis_url) as client:
        client.queue_size()  # connected: the threads start on an equal footing

        def produce(thread: int) -> list[str]:
            return [client.enqueue("f", thread, n).job_id for n in range(40)]

        produced = in_threads(16, produce)
        queued = client.queued_jobs()
    assert len(queued) == 16 * 40 == len({info.job_id for info in queued})
    by_id = {info.job_id: info.args for info in queued}
    for thread, ids in enumerate(produced):
        assert [by_id[job_id] for job_id in ids] == [(thread, n) for n in range(40)]
        # each enqueue returned before the next began: they are queued in that order
        assert [info.job_id for info in queued if info.args[0] == thread] == ids


# ---------------------------------------------------------------- a lost connection


@pytest.fixture
def proxy(redis_server: RedisServer, redis_url: str) -> Iterator[FaultProxy]:
    p = FaultProxy(redis_server.port).start()
    yield p
    p.close()


MARK = "in-the-batch"


def batch_after_one(client: jobwire.AsyncClient, count: int) -> list[Any]:
    """One enqueue alone, then ``count`` in one batch (their arguments carry MARK)."""
    calls = [lambda: client.enqueue("f", "first")]
    calls += [lambda i=i: client.enqueue("f", MARK, i) for i in range(count)]  # type: ignore[misc]
    return gather(client, calls, warm=lambda: client.enqueue("f", _job_id="warm"))


def test_a_batch_whose_reply_was_lost_is_resent_and_stored_once(
    redis_url: str, proxy: FaultProxy
) -> None:
    client = jobwire.AsyncClient(settings=RedisSettings.from_url(proxy.url))
    rule = proxy.on(MARK.encode(), "drop_reply")
    jobs = batch_after_one(client, 30)
    rule.wait()
    assert all(isinstance(job, jobwire.AsyncJob) for job in jobs)  # none "taken"
    with jobwire.Client.from_url(redis_url) as check:
        assert check.queue_size() == 32
        queued = sorted(info.job_id for info in check.queued_jobs())
        assert queued == sorted(["warm", *(job.job_id for job in jobs)])


def test_each_caller_of_a_batch_that_cannot_be_sent_gets_redis_unavailable(
    redis_url: str, proxy: FaultProxy
) -> None:
    client = jobwire.AsyncClient(settings=RedisSettings.from_url(proxy.url, retries=1))
    rule = proxy.on(MARK.encode(), "drop_request", times=2)  # the batch and its retry
    first, *batch = batch_after_one(client, 30)
    rule.wait()
    assert isinstance(first, jobwire.AsyncJob)
    assert all(isinstance(error, jobwire.RedisUnavailable) for error in batch)
    assert len({id(error) for error in batch}) == 30  # each caller's own error
    with jobwire.Client.from_url(redis_url) as check:
        queued = [info.job_id for info in check.queued_jobs()]
        assert queued == ["warm", first.job_id]  # none lost, none doubled

    again = jobwire.AsyncClient(settings=RedisSettings.from_url(proxy.url))
    assert all(gather(again, [lambda: again.enqueue("f")] * 5))  # goes on as before


# ------------------------------------------------ replicas, traces, a Redis Cluster


def test_each_caller_of_a_batch_is_told_of_its_own_replication_timeout(
    redis_factory: Callable[..., RedisServer],
) -> None:
    primary = redis_factory(extra_args=["--repl-diskless-sync-delay", "0"])
    redis_factory(extra_args=["--replicaof", "127.0.0.1", str(primary.port)])
    wait_replicated(primary)
    settings = RedisSettings.from_url(primary.url, wait_replicas=2, wait_timeout=0.3)
    client = jobwire.AsyncClient(settings=settings)
    ids = [f"order-{i}" for i in range(20)]
    errors = gather(client, [lambda i=i: client.enqueue("f", _job_id=i) for i in ids])  # type: ignore[misc]
    assert [e.job_ids for e in errors] == [(i,) for i in ids]  # one WAIT, each its own error
    assert all(isinstance(e, jobwire.ReplicationTimeout) and e.wanted == 2 for e in errors)

    confirmed = jobwire.AsyncClient(settings=dataclasses.replace(settings, wait_replicas=1))
    jobs = gather(confirmed, [lambda: confirmed.enqueue("f")] * 20)
    assert all(isinstance(job, jobwire.AsyncJob) for job in jobs)


def test_each_enqueue_of_a_batch_is_its_own_span_under_its_callers_span(
    redis_url: str,
) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from jobwire import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved, tracing._tracer = tracing._tracer, provider.get_tracer("jobwire")
    tracer = provider.get_tracer("app")
    client = jobwire.AsyncClient.from_url(redis_url)

    async def handle(request: int) -> tuple[int, str]:
        with tracer.start_as_current_span(f"request {request}") as parent:
            job = await client.enqueue("f", request)
            return parent.get_span_context().span_id, job.job_id

    try:
        handled = gather(client, [lambda r=r: handle(r) for r in range(20)])  # type: ignore[misc]
    finally:
        tracing._tracer = saved
        provider.shutdown()
    sends = {s.attributes["messaging.message.id"]: s for s in exporter.get_finished_spans()
             if s.name == "send default"}  # fmt: skip
    assert len(sends) == 20
    for parent_id, job_id in handled:
        assert sends[job_id].parent is not None and sends[job_id].parent.span_id == parent_id
    with jobwire.Client.from_url(redis_url) as check:
        for info in check.queued_jobs():
            span = sends[info.job_id].get_span_context()
            assert f"{span.span_id:016x}" in info.headers["traceparent"]  # its own context


def test_concurrent_enqueues_to_queues_on_several_masters_of_a_cluster(cluster_url: str) -> None:
    queues = ["q-a", "q-b", "q-d"]  # their slots are on the three masters
    settings = RedisSettings.from_url(cluster_url, wait_replicas=1, wait_timeout=2)
    client = jobwire.AsyncClient(settings=settings)
    calls = [lambda i=i: client.enqueue("f", i, _queue_name=queues[i % 3]) for i in range(60)]  # type: ignore[misc]
    jobs = gather(client, calls)
    assert all(isinstance(job, jobwire.AsyncJob) for job in jobs)

    with jobwire.Client(settings=settings) as sync:
        threaded = in_threads(16, lambda i: sync.enqueue("f", i, _queue_name=queues[i % 3]))
        assert all(isinstance(job, jobwire.Job) for job in threaded)
        for n, queue in enumerate(queues):
            queued = {info.job_id for info in sync.queued_jobs(queue)}
            assert queued == {j.job_id for j in (*jobs[n::3], *threaded[n::3])}


def test_a_client_whose_loop_ended_with_a_batch_unsent_works_on_the_next_loop(
    redis_url: str,
) -> None:
    client = jobwire.AsyncClient.from_url(redis_url)

    async def abandoned() -> list[asyncio.Task[Any]]:
        # one in flight, nine queued when the loop ends
        tasks = [asyncio.ensure_future(client.enqueue("f", i)) for i in range(10)]
        await asyncio.sleep(0)
        return tasks

    async def later() -> Any:
        try:
            return await asyncio.wait_for(client.enqueue("f", "later"), 10)
        finally:
            await client.close()

    asyncio.run(abandoned())
    assert isinstance(asyncio.run(later()), jobwire.AsyncJob)
