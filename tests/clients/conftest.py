"""Fixtures that give every client test both clients: ``client`` is parametrized sync/async.

The async client runs on its own event loop in a background thread; :class:`AsyncView`
forwards each call to the real coroutine method there and waits for it, so one test body
exercises the real ``AsyncClient``/``AsyncJob`` code paths exactly as it does ``Client``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import LoopThread

import jobwire
from jobwire.consumer import Consumer
from jobwire.core import now_ms
from jobwire.models import Delivery
from jobwire.protocol import Gen, run_sync
from jobwire.wire import ErrorRecord, ResultEnvelope


class AsyncView:
    """Calls an async client's (or job's) methods synchronously, through its loop thread."""

    def __init__(self, target: Any, loop: LoopThread) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if asyncio.iscoroutine(result):
                result = self._loop.run(result)
            return self._wrap(result)

        return call

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, jobwire.AsyncJob):
            return AsyncView(value, self._loop)
        if isinstance(value, list):
            return [self._wrap(v) for v in value]
        return value

    def __eq__(self, other: object) -> bool:
        other_target = other._target if isinstance(other, AsyncView) else other
        return bool(self._target == other_target)

    def __hash__(self) -> int:
        return hash(self._target)


ClientFactory = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def make_client(
    request: pytest.FixtureRequest, redis_url: str, loop_thread: LoopThread
) -> Iterator[ClientFactory]:
    """Build clients of the parametrized kind; all are closed after the test."""
    kind: str = request.param
    made: list[Any] = []

    def make(url: str | None = None, **options: Any) -> Any:
        url = url or redis_url
        if kind == "sync":
            client = jobwire.Client.from_url(url, **options)
            made.append(client)
            return client

        async def build() -> jobwire.AsyncClient:
            return jobwire.AsyncClient.from_url(url, **options)

        client = loop_thread.run(build())
        made.append(client)
        return AsyncView(client, loop_thread)

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for client in made:
        if isinstance(client, jobwire.AsyncClient):
            loop_thread.run(client.close())
        else:
            client.close()


@pytest.fixture
def client(make_client: ClientFactory) -> Any:
    """A client on the test's Redis, sync or async (the view), default options."""
    return make_client()


class Worker:
    """Test stand-in for the worker: drives the core's consumer operations synchronously."""

    def __init__(
        self,
        url: str,
        name: str = "test-worker",
        queue: str | None = None,
        lease: float = 10.0,
        **options: Any,
    ) -> None:
        self.client = jobwire.Client.from_url(url, **options)
        self.consumer = Consumer(self.client._core, name, queue, lease=lease)
        self.run(self.consumer.ensure_group())

    def run(self, gen: Gen[Any]) -> Any:
        return run_sync(self.client.redis, gen)

    def take(self, count: int = 10) -> list[Delivery]:
        """Fetch up to ``count`` ready jobs (non-blocking)."""
        result: list[Delivery] = self.run(self.consumer.fetch(count))
        return result

    def result_for(self, d: Delivery, outcome: str = "success", value: Any = None,
                   exc: BaseException | None = None) -> ResultEnvelope:  # fmt: skip
        job = self.client._core.codec.decode_job(d.data)
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
            worker=self.consumer.name,
            format=job.format,
        )

    def succeed(self, d: Delivery, value: Any = None, keep: float | None = 60) -> None:
        self.run(self.consumer.finish(d, self.result_for(d, value=value), keep))

    def fail(self, d: Delivery, exc: BaseException, outcome: str = "error") -> None:
        self.run(self.consumer.finish(d, self.result_for(d, outcome, exc=exc), 60))

    def retry(self, d: Delivery, exc: BaseException, defer: float | None = None) -> bool:
        result: bool = self.run(
            self.consumer.retry(d, self.result_for(d, "error", exc=exc), 60, defer)
        )
        return result

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def worker(redis_url: str) -> Iterator[Worker]:
    w = Worker(redis_url, accept=("json", "msgpack", "pickle"))
    yield w
    w.close()
