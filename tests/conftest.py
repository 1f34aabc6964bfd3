"""Shared fixtures: real redis-server processes owned by the test session (see redis_harness)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from tests.helpers.redis_harness import (
    MISSING_MESSAGE,
    REDIS_SERVER,
    RedisCluster,
    RedisServer,
    close_all,
)
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
def redis_url(single_redis_url: str) -> str:
    """URL of the shared server, emptied before the test.

    A module overrides it to run its tests on the cluster too (see :func:`on_both`).
    """
    return single_redis_url


def on_both(request: pytest.FixtureRequest) -> str:
    """The body of a ``redis_url`` fixture parametrized over ``single`` and ``cluster``."""
    fixture = "cluster_url" if request.param == "cluster" else "single_redis_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def single_redis_url(redis_server: RedisServer) -> str:
    """URL of the shared server, emptied before the test (it is ours: FLUSHALL is safe)."""
    if not redis_server.running:  # a previous test stopped it; bring it back
        redis_server.restart()
    with redis.Redis.from_url(redis_server.url) as r:
        r.flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """One Redis Cluster (3 masters, 3 replicas) shared by the session, started on first use."""
    _require_redis()
    cluster = RedisCluster().start()
    yield cluster
    cluster.close()


@pytest.fixture
def cluster_url(redis_cluster: RedisCluster) -> str:
    """``redis+cluster://`` URL of the shared cluster, emptied before the test."""
    redis_cluster.wait_ok()  # a fault test may have failed a master over
    redis_cluster.flush()
    return redis_cluster.url


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
