"""Clients for behaviour tests: every kind (Redis or in-memory, sync or async) behind one API.

Async clients run on an event loop in a background thread; :class:`AsyncView` forwards each
call to the real coroutine method there and waits for it, so one test body exercises
``AsyncClient``/``AsyncJob`` exactly as it does ``Client``. :func:`client_factory` builds
clients of one kind for a test (the ``make_client`` fixtures of ``tests/sdk`` use it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import jobwire
from jobwire import RedisSettings
from jobwire.testing import AsyncMemoryClient, MemoryClient, MemoryStore
from tests.helpers.support import LoopThread


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


def server_url(request: pytest.FixtureRequest, kind: str) -> str | None:
    """The URL of the (flushed) Redis a kind of client talks to; None for the twins.

    ``cluster-sync`` and ``cluster-async`` are the Redis clients on the session's Redis
    Cluster (``redis+cluster://``), the others on its single server.
    """
    if kind.startswith("memory"):
        return None
    fixture = "cluster_url" if kind.startswith("cluster") else "redis_url"
    url: str = request.getfixturevalue(fixture)
    return url


def client_factory(
    request: pytest.FixtureRequest, kind: str, loop_thread: LoopThread
) -> Iterator[ClientFactory]:
    made: list[Any] = []
    store = MemoryStore()  # twins made in one test share it, as clients share a Redis
    # a Redis test starts from an empty shared server or cluster (the fixtures flush them)
    redis_url = server_url(request, kind)

    def make(url: str | RedisSettings | None = None, **options: Any) -> Any:
        """A client of this kind: on the test's server, another URL, or given settings."""
        if kind == "memory-sync":
            return MemoryClient(store=store, **options)
        settings = url if isinstance(url, RedisSettings) else None
        if kind in ("sync", "cluster-sync"):
            settings = settings or RedisSettings.from_url(url or redis_url)
            client = jobwire.Client(settings=settings, **options)
            made.append(client)
            return client

        async def build() -> jobwire.AsyncClient:
            if kind == "memory-async":
                return AsyncMemoryClient(store=store, **options)
            redis_settings = settings or RedisSettings.from_url(url or redis_url)
            return jobwire.AsyncClient(settings=redis_settings, **options)

        client = loop_thread.run(build())
        made.append(client)
        return AsyncView(client, loop_thread)

    make.kind = kind  # type: ignore[attr-defined]
    make.store = store  # type: ignore[attr-defined]
    yield make
    for client in made:
        if isinstance(client, jobwire.AsyncClient):
            loop_thread.run(client.close())
        else:
            client.close()
