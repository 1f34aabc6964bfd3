"""A Sentinel failover while jobs flow: a real sentinel, a primary and two replicas.

The primary is SIGKILLed mid-stream; the sentinel promotes a replica (after its
``down-after-milliseconds`` of 1 s) and points the other one at it. Clients and the worker
reach the new primary through ``redis+sentinel://``; with ``wait_replicas=1`` no
acknowledged job is lost.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from tests.helpers.redis_harness import RedisServer, wait_replicated
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker
from tests.reliability import test_cluster_faults as faults

pytestmark = pytest.mark.slow


def test_sentinel_failover_loses_no_acknowledged_job(
    redis_factory: Callable[..., RedisServer], start_worker: StartWorker
) -> None:
    fast_sync = ["--repl-diskless-sync-delay", "0"]
    primary = redis_factory(extra_args=fast_sync)
    replicas = [
        redis_factory(extra_args=[*fast_sync, "--replicaof", "127.0.0.1", str(primary.port)])
        for _ in range(2)
    ]
    wait_replicated(primary, 2)
    sentinel = redis_factory(sentinel_for=primary)
    url = f"redis+sentinel://127.0.0.1:{sentinel.port}/mymaster/0"
    with redis.Redis(port=sentinel.port) as s:
        assert wait_until(lambda: len(s.sentinel_slaves("mymaster")) == 2, timeout=20)

        def master_port() -> int:
            return int(s.sentinel_get_master_addr_by_name("mymaster")[1])

        def kill() -> None:
            primary.kill()
            assert wait_until(lambda: master_port() != primary.port, timeout=30)
            new = next(r for r in replicas if r.port == master_port())
            wait_replicated(new, 1)  # the other replica follows it (WAIT can succeed again)

        faults.runs.clear()
        faults.flow(url, start_worker, kill, replicas=1)
