"""Redis durability with AOF: redis-server SIGKILLed while producers enqueue, then restarted.

An enqueue returns only after Redis has applied the script and written it to its AOF
buffer, which Redis hands to the OS before it replies. So a killed *process* loses no
acknowledged job under ``appendfsync always`` or ``everysec``; everysec's window (up to
about a second of writes) opens only when the machine itself dies before the OS writes
its cache to disk, which a test on one machine cannot produce.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis

import jobwire
from jobwire import RedisSettings
from jobwire.keys import QueueKeys
from tests.helpers.redis_harness import RedisServer
from tests.helpers.support import job_stored

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_no_acknowledged_job_is_lost_when_redis_is_killed(
    fsync: str, redis_factory: Callable[..., RedisServer]
) -> None:
    server = redis_factory(appendonly=True, appendfsync=fsync)
    settings = RedisSettings.from_url(server.url, retries=0, socket_timeout=2.0)
    acknowledged: list[str] = []
    failures: list[BaseException] = []

    def produce() -> None:
        with jobwire.Client(settings=settings) as client:
            while True:
                try:
                    job = client.enqueue("f", "x" * 100)
                except jobwire.RedisUnavailable as exc:  # the kill: stop producing
                    failures.append(exc)
                    return
                assert job is not None
                acknowledged.append(job.job_id)

    producers = [threading.Thread(target=produce) for _ in range(4)]
    for thread in producers:
        thread.start()
    time.sleep(1.5)
    server.kill()
    for thread in producers:
        thread.join(30)
    server.restart()
    keys = QueueKeys("jobwire", "default")
    with redis.Redis.from_url(server.url) as r:
        present = [job_stored(r, keys, job_id) for job_id in acknowledged]
    lost = [job_id for job_id, found in zip(acknowledged, present, strict=True) if not found]
    print(f"\nappendfsync {fsync}: {len(acknowledged)} acknowledged, {len(lost)} lost")
    # what Redis said about its AOF (a slow fsync makes it postpone writes under everysec)
    log = [line for line in (server.dir / "redis.log").read_text(errors="replace").splitlines()
           if "AOF" in line or "fsync" in line][-5:]  # fmt: skip
    # every producer saw the outage as a typed error
    assert len(failures) == len(producers), (failures, log)
    assert len(acknowledged) > 100, log
    assert lost == [], (len(lost), len(acknowledged), log)
