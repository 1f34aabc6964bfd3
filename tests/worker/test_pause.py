"""A paused queue: workers take nothing from it within a second, and go on when resumed."""

from __future__ import annotations

import time

import orjson
import redis

import jobwire
from jobwire import JobStatus
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker


def test_a_paused_queue_is_left_alone_within_a_second_and_resumes(
    client: jobwire.Client, start_worker: StartWorker, redis_url: str
) -> None:
    start_worker(health_check_interval=0.2, queue_names=["default", "other"])
    assert client.enqueue("ok_loop", 1).result(timeout=5) == 2  # the worker is idle now
    client.pause()
    time.sleep(1.05)  # an idle worker blocked on Redis notices within a second
    held = [client.enqueue("ok_loop", n) for n in range(3)]
    elsewhere = client.enqueue("ok_loop", 5, _queue_name="other")
    assert elsewhere is not None and elsewhere.result(timeout=5) == 10  # other queues go on
    time.sleep(1.0)
    assert [j.status() for j in held if j] == [JobStatus.QUEUED] * 3
    # the health record says so (what jobwire info and the dashboard show)
    key = client._core.keys().health
    with redis.Redis.from_url(redis_url) as r:

        def paused_in_record() -> bool:
            raws = [r.get(k) for k in r.scan_iter(match=key("*"))]
            return any(raw and orjson.loads(raw).get("paused") is True for raw in raws)

        assert wait_until(paused_in_record, timeout=3)
    started = time.monotonic()
    client.resume()
    assert [j.result(timeout=5) for j in held if j] == [0, 2, 4]
    assert time.monotonic() - started < 2.0


def test_a_busy_worker_stops_taking_jobs_within_a_second(
    client: jobwire.Client, start_worker: StartWorker
) -> None:
    start_worker(max_jobs=2)
    # enough jobs that the worker is still busy a second after the pause, however fast
    jobs = client.enqueue_many([jobwire.JobSpec("ok_thread", n) for n in range(4000)])
    wait_until(lambda: client.queue_size() < 3995, timeout=10)
    client.pause()
    time.sleep(1.1)
    left = client.queue_size()
    time.sleep(1.0)
    assert client.queue_size() == left > 0  # nothing more was taken
    client.resume()
    assert jobs[-1] is not None and jobs[-1].result(timeout=60) == 7998
