"""Fixtures that give every behaviour test every client.

``client`` is parametrized over the Redis clients and their in-memory twins
(``jobwire.testing``), sync and async (built by :func:`tests.helpers.clients.client_factory`).
``worker`` is the matching worker stand-in: it drives a Redis queue with the consumer
protocol, or the twin with its public state setters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

import jobwire
from jobwire import JobStatus
from jobwire.consumer import ABORT_REQUESTED, Consumer
from jobwire.models import Delivery
from jobwire.producer import now_ms
from jobwire.protocol import Gen, run_async, run_sync
from jobwire.testing import MemoryClient, MemoryStore
from jobwire.wire import ErrorRecord, JobEnvelope, ResultEnvelope
from tests.helpers.clients import ClientFactory, client_factory, server_url
from tests.helpers.support import LoopThread, fetch, finish

#: Every behaviour test runs against each of these: the two Redis clients on one Redis, the
#: same two on a Redis Cluster (3 masters, 3 replicas) and the two in-memory twins of
#: jobwire.testing. Tests that need Redis itself use ``make_redis_client``.
KINDS = ["sync", "async", "cluster-sync", "cluster-async", "memory-sync", "memory-async"]
ALL_FORMATS = ("json", "msgpack", "pickle")


@pytest.fixture(params=KINDS)
def make_client(request: pytest.FixtureRequest, loop_thread: LoopThread) -> Iterator[ClientFactory]:
    """Build clients of the parametrized kind (Redis or in-memory, sync or async)."""
    yield from client_factory(request, request.param, loop_thread)


@pytest.fixture(params=["sync", "async"])
def make_redis_client(
    request: pytest.FixtureRequest, loop_thread: LoopThread
) -> Iterator[ClientFactory]:
    """Build Redis clients, sync or async (for what only a real Redis can show)."""
    yield from client_factory(request, request.param, loop_thread)


@pytest.fixture
def client(make_client: ClientFactory) -> Any:
    """A client of the parametrized kind with default options."""
    return make_client()


class Worker:
    """Test stand-in for a worker on Redis: drives the core's consumer operations.

    Its methods are the moves a worker makes (take jobs, finish them, retry, dead-letter);
    :class:`MemoryWorker` makes the same moves on the in-memory twin with its public
    state setters, so one test body checks both.
    """

    def __init__(
        self,
        url: str,
        name: str = "test-worker",
        queue: str | None = None,
        lease: float = 10.0,
        **options: Any,
    ) -> None:
        self.name = name
        self.lease = lease
        self.client = jobwire.Client.from_url(url, **options)
        self.consumer = self._consumer(queue)

    def _consumer(self, queue: str | None) -> Consumer:
        consumer = Consumer(self.client._core, self.name, queue, lease=self.lease)
        self.run(consumer.ensure_group())
        return consumer

    def consumer_for(self, queue: str | None) -> Consumer:
        if queue is None or queue == self.consumer.keys.queue:
            return self.consumer
        return self._consumer(queue)

    def run(self, gen: Gen[Any]) -> Any:
        return run_sync(self.client.redis, gen)

    def take(self, count: int = 10, queue: str | None = None) -> list[Delivery]:
        """Fetch up to ``count`` ready jobs (non-blocking)."""
        result: list[Delivery] = self.run(fetch(self.consumer_for(queue), count))
        return result

    def decode(self, data: bytes) -> JobEnvelope:
        return self.client._core.codec.decode_job(data)

    def result_for(self, d: Delivery, outcome: str = "success", value: Any = None,
                   exc: BaseException | None = None) -> ResultEnvelope:  # fmt: skip
        job = self.decode(d.data)
        now = now_ms()
        return ResultEnvelope(
            id=job.id,
            function=job.function,
            queue=job.queue,
            job_try=job.job_try + d.tries - 1,
            outcome=outcome,
            value=value,
            error=None if exc is None else ErrorRecord.from_exception(exc),
            exception=exc,
            enqueued_ms=job.enqueued_ms,
            started_ms=now,
            finished_ms=now,
            worker=self.name,
            format=job.format,
        )

    def succeed(self, d: Delivery, value: Any = None, keep: float | None = 60) -> None:
        consumer = self.consumer_for(d.queue_name)
        self.run(finish(consumer, d, self.result_for(d, value=value), keep))

    def fail(
        self, d: Delivery, exc: BaseException, outcome: str = "error", keep: float | None = 60
    ) -> None:
        consumer = self.consumer_for(d.queue_name)
        self.run(finish(consumer, d, self.result_for(d, outcome, exc=exc), keep))

    def retry(self, d: Delivery, exc: BaseException, defer: float | None = None) -> bool:
        consumer = self.consumer_for(d.queue_name)
        result: bool = self.run(consumer.retry(d, self.result_for(d, "error", exc=exc), 60, defer))
        return result

    def promote(self) -> None:
        self.run(self.consumer.promote())

    def abort_requested(self, d: Delivery) -> bool:
        return bool(self.run(self.consumer_for(d.queue_name).renew([d])) == [ABORT_REQUESTED])

    def dead_letter(self, d: Delivery, reason: str, message: str) -> None:
        """As the worker does: the entry, plus a failed result naming the reason."""
        failed = replace(
            self.result_for(d, "error"),
            error=ErrorRecord(f"jobwire.DeadLettered.{reason}", message),
        )
        consumer = self.consumer_for(d.queue_name)
        self.run(
            consumer.dead_letter(
                reason=reason, message=message, data=d.data, delivery=d, result=failed
            )
        )

    def forget_result(self, job_id: str) -> None:
        """What the end of the result's keep time does."""
        self.client.redis.delete(self.consumer.keys.results(job_id))

    def close(self) -> None:
        self.client.close()


class MemoryWorker:
    """The same moves as :class:`Worker`, made with the twin's public state setters."""

    def __init__(self, store: MemoryStore, name: str = "test-worker") -> None:
        self.name = name
        self.client = MemoryClient(store=store, accept=ALL_FORMATS)

    def take(self, count: int = 10, queue: str | None = None) -> list[Delivery]:
        taken: list[Delivery] = []
        for info in self.client.queued_jobs(queue):
            if info.status is not JobStatus.QUEUED or len(taken) == count:
                break
            self.client.set_in_progress(info.job_id, queue, worker=self.name)
            data, tries = self.client._twin.raw(info.job_id, queue)
            taken.append(Delivery("", info.job_id, data, tries, info.queue_name))
        return taken

    def decode(self, data: bytes) -> JobEnvelope:
        return self.client._core.codec.decode_job(data)

    def succeed(self, d: Delivery, value: Any = None) -> None:
        self.client.set_complete(d.job_id, value, queue_name=d.queue_name)

    def fail(
        self, d: Delivery, exc: BaseException, outcome: str = "error", keep: float | None = 60
    ) -> None:
        self.client._twin.finish(d.job_id, d.queue_name, outcome, exc=exc, keep=keep)

    def retry(self, d: Delivery, exc: BaseException, defer: float | None = None) -> bool:
        self.client.set_failed(d.job_id, exc, retry_in=defer or 0, queue_name=d.queue_name)
        return True

    def promote(self) -> None:
        """Nothing to do: due jobs are ready at once in memory."""

    def abort_requested(self, d: Delivery) -> bool:
        return self.client.abort_requested(d.job_id, d.queue_name)

    def dead_letter(self, d: Delivery, reason: str, message: str) -> None:
        self.client.set_dead_letter(d.job_id, reason, message, queue_name=d.queue_name)

    def forget_result(self, job_id: str) -> None:
        twin = self.client._twin
        with twin.store._cond:
            del twin.store._queue(twin.queue_name).results[job_id]

    def close(self) -> None:
        self.client.close()


AnyWorker = Worker | MemoryWorker


@pytest.fixture
def worker(request: pytest.FixtureRequest, make_client: ClientFactory) -> Iterator[AnyWorker]:
    """A worker stand-in for the kind of client under test."""
    w: AnyWorker
    if make_client.kind.startswith("memory"):  # type: ignore[attr-defined]
        w = MemoryWorker(make_client.store)  # type: ignore[attr-defined]
    else:
        url = server_url(request, make_client.kind)  # type: ignore[attr-defined]
        assert url is not None
        w = Worker(url, accept=ALL_FORMATS)
    yield w
    w.close()


@pytest.fixture
def redis_worker(redis_url: str) -> Iterator[Worker]:
    """A worker stand-in on the test's Redis."""
    w = Worker(redis_url, accept=ALL_FORMATS)
    yield w
    w.close()


#: Runs a protocol generator to its end and returns its value.
Drive = Callable[[Gen[Any]], Any]


@pytest.fixture(params=["sync", "async"])
def drive(
    request: pytest.FixtureRequest, redis_url: str, loop_thread: LoopThread
) -> Iterator[Drive]:
    """Run a protocol generator with the sync or the async driver."""
    if request.param == "sync":
        client = jobwire.Client.from_url(redis_url)
        yield lambda gen: run_sync(client.redis, gen)
        client.close()
    else:
        settings = jobwire.RedisSettings.from_url(redis_url)

        async def make() -> Any:
            return settings.async_client()

        conn = loop_thread.run(make())
        yield lambda gen: loop_thread.run(run_async(conn, gen))
        loop_thread.run(conn.aclose())


@pytest.fixture
def producer(redis_url: str) -> Iterator[jobwire.Client]:
    """A blocking client on the test's Redis, to enqueue with and to reach Redis directly."""
    with jobwire.Client.from_url(redis_url) as client:
        yield client
