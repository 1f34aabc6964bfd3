"""Pausing a queue, its flag and its running jobs, on every kind of client."""

from __future__ import annotations

from typing import Any

import jobwire
from jobwire import JobStatus


def test_pause_and_resume_set_the_flag_and_say_whether_they_changed_it(client: Any) -> None:
    assert client.is_paused() is False
    assert client.pause() is True
    assert client.pause() is False  # already paused
    assert client.is_paused() and not client.is_paused("other")
    # a paused queue still takes jobs, lists them and aborts them
    job = client.enqueue("send", 1, _job_id="j1")
    assert job.status() is JobStatus.QUEUED
    assert [j.job_id for j in client.queued_jobs()] == ["j1"]
    assert client.resume() is True
    assert client.resume() is False
    assert client.is_paused() is False


def test_running_jobs_lists_what_workers_run(client: Any, worker: Any) -> None:
    assert client.running_jobs() == []
    client.enqueue("send", 1, _job_id="first")
    client.enqueue("send", 2, _job_id="second")
    client.enqueue("send", 3, _job_id="waits", _defer_by=600)
    taken = worker.take(2)
    assert {d.job_id for d in taken} == {"first", "second"}
    running = client.running_jobs()
    assert [j.job_id for j in running] == ["first", "second"]
    assert all(j.status is JobStatus.IN_PROGRESS and j.worker for j in running)
    assert running[0].args == (1,)
    assert [j.job_id for j in client.running_jobs(limit=1)] == ["first"]
    worker.succeed(taken[0], "done")
    assert [j.job_id for j in client.running_jobs()] == ["second"]


def test_queue_stats_counts_every_state(client: Any, worker: Any) -> None:
    client.enqueue("send", 1)
    client.enqueue("send", 2)
    client.enqueue("send", 3, _defer_by=600)
    worker.take(1)
    assert client.queue_stats() == {
        "queued": 1, "deferred": 1, "in_progress": 1, "dead_letters": 0,
    }  # fmt: skip


def test_a_paused_twin_runs_nothing_until_resumed() -> None:
    from jobwire.testing import MemoryClient

    def send(ctx: dict[str, Any], n: int) -> int:
        return n

    twin = MemoryClient(functions=[send], eager=True)
    twin.pause()
    job = twin.enqueue("send", 7)
    assert job is not None and job.status() is JobStatus.QUEUED
    assert twin.run_jobs() == 0
    twin.resume()
    assert twin.run_jobs() == 1 and job.result() == 7
    assert isinstance(twin, jobwire.Client)
