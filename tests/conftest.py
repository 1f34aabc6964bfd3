"""Shared fixtures: real redis-server processes owned by the test session (see redis_harness)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from tests.helpers.redis_harness import MISSING_MESSAGE, REDIS_SERVER, RedisServer, close_all
from tests.helpers.support import LoopThread


def _require_redis() -> None:
    if REDIS_SERVER is None:
        pytest.fail(MISSING_MESSAGE, pytrace=False)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One server shared by the session; tests get it flushed through ``redis_url``."""
    _require_redis()
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the shared server, emptied before the test (it is ours: FLUSHALL is safe)."""
    if not redis_server.running:  # a previous test stopped it; bring it back
        redis_server.restart()
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushall()
    return redis_server.url


@pytest.fixture
def redis_factory() -> Iterator[Callable[..., RedisServer]]:
    """Start private servers (for tests that stop, kill or restart them); all closed after."""
    _require_redis()
    started: list[RedisServer] = []

    def make(**options: object) -> RedisServer:
        server = RedisServer(**options)  # type: ignore[arg-type]
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.close()


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    close_all()
