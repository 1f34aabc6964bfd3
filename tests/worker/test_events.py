"""Lifecycle events, progress and stats written by real workers, read through the clients."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import jobwire
from jobwire import EventType, JobStatus
from tests.helpers.support import LoopThread, wait_until
from tests.helpers.workers import StartWorker, Workers

from .event_jobs import PROGRESS_FUNCTIONS
from .jobs import EXECUTORS, all_functions

E = EventType


def kinds(job: jobwire.Job) -> list[tuple[EventType, int | None]]:
    return [(e.type, e.job_try) for e in job.events()]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_each_executor_writes_the_lifecycle_of_every_outcome(
    executor: str, start_worker: StartWorker, client: jobwire.Client
) -> None:
    worker = start_worker(unknown_function_grace=0)
    ok = client.enqueue(f"ok_{executor}", 1)
    flaky = client.enqueue(f"flaky_{executor}")
    fail = client.enqueue(f"fail_{executor}")
    slow = client.enqueue(f"slow_{executor}")
    unknown = client.enqueue("nobody_has_it")
    ok.result(timeout=30)
    flaky.result(timeout=30)
    with pytest.raises(jobwire.JobFailed):
        fail.result(timeout=30)
    assert wait_until(lambda: slow.status() is JobStatus.IN_PROGRESS)
    assert slow.abort(timeout=30)
    with pytest.raises(jobwire.JobFailed):
        unknown.result(timeout=30)

    assert kinds(ok) == [(E.ENQUEUED, 1), (E.STARTED, 1), (E.SUCCEEDED, 1)]
    assert kinds(flaky) == [
        (E.ENQUEUED, 1), (E.STARTED, 1), (E.RETRIED, 1), (E.STARTED, 2), (E.RETRIED, 2),
        (E.STARTED, 3), (E.SUCCEEDED, 3),
    ]  # fmt: skip
    assert kinds(fail) == [(E.ENQUEUED, 1), (E.STARTED, 1), (E.FAILED, 1)]
    assert kinds(slow) == [(E.ENQUEUED, 1), (E.STARTED, 1), (E.ABORTED, 1)]
    # taken (started) before the worker finds it has no such function
    assert [e.type for e in unknown.events()] == [E.ENQUEUED, E.STARTED, E.DEAD_LETTERED]

    end = ok.events()[-1]
    assert end.function == f"ok_{executor}" and end.worker == worker.name
    assert end.duration is not None and 0 <= end.duration < 30
    (failed,) = [e for e in fail.events() if e.type is E.FAILED]
    assert failed.error == f"tests.worker.jobs.JobError: {executor} failed"
    (dead,) = [e for e in unknown.events() if e.type is E.DEAD_LETTERED]
    assert dead.error is not None and dead.error.startswith("unknown_function: ")
    started = [e for e in flaky.events() if e.type is E.STARTED]
    assert all(e.worker == worker.name and e.function == f"flaky_{executor}" for e in started)


def test_a_job_aborted_before_it_starts_and_a_deferred_one(client: jobwire.Client) -> None:
    waiting = client.enqueue("f", _defer_by=60)
    assert waiting.abort() is True
    first, aborted = waiting.events()
    assert (first.type, aborted.type) == (E.ENQUEUED, E.ABORTED)
    assert first.info.isdigit()  # the deferred job's due time (ms)
    assert aborted.worker is None and aborted.function == "f"


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_progress_of_each_executor_is_visible_and_coalesced(
    kind: str,
    start_worker: StartWorker,
    redis_url: str,
    loop_thread: LoopThread,
    tmp_path: Path,
) -> None:
    start_worker(PROGRESS_FUNCTIONS)
    if kind == "sync":
        client: Any = jobwire.Client.from_url(redis_url)
        run: Any = lambda value: value  # noqa: E731
    else:
        client = loop_thread.run(jobwire.AsyncClient.connect(redis_url))
        run = loop_thread.run
    try:
        for executor in EXECUTORS:
            gate = tmp_path / f"gate-{executor}"
            job = run(client.enqueue(f"progress_{executor}", str(gate)))

            def half_way(job: Any = job) -> bool:
                p = run(job.progress())
                return p is not None and p.value == 0.5

            reached = wait_until(half_way, timeout=20)
            assert reached, executor
            latest = run(job.progress())
            assert (latest.value, latest.message) == (0.5, "half way")
            gate.touch()
            assert run(job.result(timeout=30)) == "done"
            assert run(job.progress()) is None  # kept while it waits or runs
            reports = [e.progress for e in run(job.events()) if e.type is E.PROGRESS]
            assert reports[-1] is not None and reports[-1].value == 0.5
            assert 1 <= len(reports) <= 5, (executor, len(reports))  # 501 reports, coalesced
    finally:
        if kind == "sync":
            client.close()
        else:
            loop_thread.run(client.close())


def test_stats_survive_a_worker_restart(
    workers: Workers, redis_url: str, client: jobwire.Client
) -> None:
    def burst(ok: int, failing: int) -> None:
        for i in range(ok):
            client.enqueue("quick", i)
        for _ in range(failing):
            client.enqueue("boom")
        proc = workers.spawn(redis_url, "tests.worker.event_jobs.StatsSettings")
        assert proc.wait(60) == 0

    burst(5, 2)
    burst(3, 1)  # a new worker process: the counts go on from what Redis holds
    stats = client.stats()
    assert stats.functions() == ["boom", "quick"]
    quick, boom = stats.total("quick"), stats.total("boom")
    assert quick.counts["success"] == 8 and quick.executions == 8
    assert boom.counts["error"] == 3 and sum(boom.counts.values()) == 3
    assert stats.total().executions == 11
    assert quick.percentile(0.99) is not None and quick.percentile(0.99) < 1.0
    hourly = client.stats(resolution="hour", function="quick")
    assert hourly.functions() == ["quick"] and hourly.total().counts["success"] == 8
    assert any(b.total.executions for b in stats.buckets)


def test_events_off_writes_no_events_or_stats(start_worker: StartWorker, redis_url: str) -> None:
    start_worker(all_functions(), events=False)
    with jobwire.Client.from_url(redis_url, events=False) as client:
        assert client.enqueue("ok_loop", 1).result(timeout=30) == 2
        assert client.enqueue("fail_loop") is not None
        assert wait_until(lambda: client.queue_size() == 0)
        keys = [k.decode() for k in client.redis.keys("*")]
        assert not [k for k in keys if k.endswith(":lifecycle") or ":stats:" in k], keys
        assert client.stats().total().executions == 0


def test_following_a_queue_sees_a_worker_run_a_job(
    start_worker: StartWorker, redis_url: str, loop_thread: LoopThread
) -> None:
    start_worker()

    async def scenario() -> list[EventType]:
        async with jobwire.AsyncClient.from_url(redis_url) as client:
            seen: list[EventType] = []
            follower = client.events(timeout=10)
            first = asyncio.ensure_future(follower.__anext__())
            await asyncio.sleep(0.2)  # following (blocked in Redis) before the job exists
            job = await client.enqueue("ok_loop", 1)
            seen.append((await first).type)
            async for event in follower:
                if event.job_id == job.job_id:
                    seen.append(event.type)
                if event.type is E.SUCCEEDED:
                    break
            return seen

    assert loop_thread.run(scenario()) == [E.ENQUEUED, E.STARTED, E.SUCCEEDED]
