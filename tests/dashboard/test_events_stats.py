"""The dashboard's charts from the stats, its live events, progress, events and /metrics."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

import jobwire
from jobwire.dashboard.data import safe_view
from jobwire.dashboard.live import Sampler
from tests.dashboard.conftest import TOKEN, Dashboard
from tests.dashboard.jobs import XSS, functions
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return values


def test_metrics_serve_the_queue_gauges_from_redis(
    dashboard: Dashboard, client: jobwire.Client, start_worker: StartWorker
) -> None:
    for n in range(3):
        client.enqueue("ok", n, _queue_name="mail")
    client.enqueue("ok", 9, _queue_name="mail", _defer_by=600)
    client.enqueue("ok", 1, _queue_name="idle", _defer_by=600)
    client.pause("mail")
    time.sleep(1.1)  # the oldest waiting job is at least a second old
    browser = dashboard(login=False)
    assert browser.get("/metrics").status_code == 401  # as every page: the token
    answer = browser.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    m = scrape(answer.text)
    assert m[("jobwire_queue_jobs", (("queue", "mail"), ("state", "queued")))] == 3
    assert m[("jobwire_queue_jobs", (("queue", "mail"), ("state", "deferred")))] == 1
    assert m[("jobwire_queue_jobs", (("queue", "mail"), ("state", "in_progress")))] == 0
    assert m[("jobwire_queue_jobs", (("queue", "mail"), ("state", "dead_letters")))] == 0
    assert 1.0 <= m[("jobwire_queue_oldest_waiting_seconds", (("queue", "mail"),))] < 30
    assert m[("jobwire_queue_oldest_waiting_seconds", (("queue", "idle"),))] == 0  # only deferred
    assert m[("jobwire_queue_paused", (("queue", "mail"),))] == 1
    assert m[("jobwire_queue_paused", (("queue", "idle"),))] == 0
    assert m[("jobwire_workers", (("queue", "mail"),))] == 0
    start_worker(functions(), queue_names=["idle"], health_check_interval=0.2)
    client.resume("mail")
    wait_until(
        lambda: scrape(browser.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text)
        [("jobwire_workers", (("queue", "idle"),))] == 1,
        timeout=5,
    )  # fmt: skip
    # read-only without a token: loopback only, as the other pages
    assert dashboard(token=None, read_only=True).get("/metrics").status_code == 200
    remote = dashboard(token=None, read_only=True, peer=("192.0.2.10", 50000))
    assert remote.get("/metrics").status_code == 403


def test_the_charts_are_the_stats_of_the_jobs_run(
    dashboard: Dashboard, client: jobwire.Client, start_worker: StartWorker
) -> None:
    start_worker(functions(), queue_names=["default", "other"])
    jobs = [client.enqueue("ok", n) for n in range(5)] + [client.enqueue("boom")]
    jobs.append(client.enqueue("ok", 0, _queue_name="other"))
    for job in jobs:
        assert job is not None
        wait_until(lambda job=job: job.outcome() is not None, timeout=10)
    browser = dashboard()
    one = browser.get("/api/stats", params={"queue": "default"}).json()
    stats = client.stats("default", since=timedelta(hours=1))
    assert one["t"] == [int(b.start.timestamp()) for b in stats.buckets]
    assert one["success"] == [b.total.counts["success"] for b in stats.buckets]
    assert sum(one["success"]) == 5 and sum(one["failed"]) == 1
    assert one["p95"] == [b.total.percentile(0.95) for b in stats.buckets]
    every = browser.get("/api/stats").json()  # the overview: every queue summed
    assert sum(every["success"]) == 6 and sum(every["failed"]) == 1
    assert 55 <= len(every["t"]) <= 62  # a point per minute of the last hour
    assert 'data-stats="success,failed,retried,dead_lettered"' in browser.get("/").text


def test_a_running_jobs_progress_and_a_jobs_events_are_on_their_pages(
    dashboard: Dashboard, client: jobwire.Client, start_worker: StartWorker
) -> None:
    start_worker(functions())
    job = client.enqueue("working", 3, XSS, _job_id="resize-1")
    assert job is not None
    wait_until(lambda: job.progress() is not None, timeout=10)
    browser = dashboard()
    running = browser.get("/queue", params={"name": "default", "state": "running"}).text
    assert "resize-1" in running and ("40 %" in running or "80 %" in running)
    assert XSS not in running and "&lt;script&gt;window.__xss=1&lt;/script&gt;" in running
    assert job.result(timeout=10) == "done"
    page = browser.get("/job", params={"queue": "default", "id": "resize-1"}).text
    timeline = page[page.index('id="job-events"') :]
    order = [timeline.index(f"<td>{t}</td>") for t in ("enqueued", "started", "progress")]
    assert order == sorted(order) and "<td>succeeded</td>" in timeline
    assert XSS not in page


def test_one_follower_pushes_events_and_counts_and_stops_without_viewers(
    redis_url: str, client: jobwire.Client
) -> None:
    client.enqueue("ok", 0, _queue_name="live")  # the queue exists before anyone watches

    async def watch() -> None:
        async with jobwire.AsyncClient.from_url(redis_url) as app_client:
            sampler = Sampler(safe_view(app_client))
            async with sampler.listen() as first, sampler.listen() as second:
                await asyncio.wait_for(first.get(), 5)  # the first push: counts at once
                await asyncio.wait_for(second.get(), 5)
                started = time.monotonic()
                await asyncio.to_thread(client.enqueue, XSS, _queue_name="live", _job_id=XSS)
                sample = await asyncio.wait_for(first.get(), 5)
                assert time.monotonic() - started < 2.5  # pushed on the event, not the 5 s refresh
                (event,) = sample["events"]
                assert event["type"] == "enqueued" and event["job_id"] == XSS  # as data
                assert sample["queues"]["live"]["queued"] == 2
                assert (await asyncio.wait_for(second.get(), 5))["events"] == [event]
                assert sampler.following
                task = sampler._task
            await asyncio.sleep(0.1)
            assert task is not None and task.done()  # nobody watches: nothing reads Redis
            assert not sampler.following

    asyncio.run(watch())


@pytest.mark.parametrize("burst", [30])
def test_a_burst_of_events_is_coalesced_into_one_push_a_second(
    redis_url: str, client: jobwire.Client, burst: int
) -> None:
    client.enqueue("ok", 0, _queue_name="busy")

    async def watch() -> None:
        async with jobwire.AsyncClient.from_url(redis_url) as app_client:
            sampler = Sampler(safe_view(app_client))
            async with sampler.listen() as queue:
                await asyncio.wait_for(queue.get(), 5)
                for n in range(burst):
                    await app_client.enqueue("ok", n, _queue_name="busy")
                pushes, seen, t0 = 0, 0, time.monotonic()
                while seen < burst:
                    seen += len((await asyncio.wait_for(queue.get(), 5))["events"])
                    pushes += 1
                assert pushes <= time.monotonic() - t0 + 1.5

    asyncio.run(watch())


def test_live_events_are_read_on_a_cluster_across_slots(cluster_url: str) -> None:
    # each queue's stream has its own slot: one XREAD may not span them
    from jobwire.dashboard import data

    async def main() -> list[str]:
        async with await jobwire.AsyncClient.connect(cluster_url) as client:
            start = dict.fromkeys(("alpha", "beta", "gamma"), "0")
            for q in start:
                await client.enqueue("f", _queue_name=q)
            events, _ = await data.read_events(client, start, 1.0)
            return sorted(e.queue_name for e in events)

    assert asyncio.run(main()) == ["alpha", "beta", "gamma"]
