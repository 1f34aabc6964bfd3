"""Queue listings, sizes, all results and dead letters, for both clients."""

from __future__ import annotations

from typing import Any

import pytest

import jobwire
from jobwire import JobStatus

from .conftest import AnyWorker, Worker


def test_queued_jobs_lists_queued_then_deferred(client: Any, worker: AnyWorker) -> None:
    a = client.enqueue("a", 1)
    b = client.enqueue("b", 2, _defer_by=60)
    c = client.enqueue("c", 3)
    running = client.enqueue("d")
    client.enqueue("other", _queue_name="elsewhere")
    (d,) = worker.take(1)  # a is now running, so no longer listed
    assert d.job_id == a.job_id
    listed = client.queued_jobs()
    assert [(j.job_id, j.status) for j in listed] == [
        (c.job_id, JobStatus.QUEUED),
        (running.job_id, JobStatus.QUEUED),
        (b.job_id, JobStatus.DEFERRED),
    ]
    assert listed[0].args == (3,)
    assert client.queue_size() == 3
    assert [j.function for j in client.queued_jobs("elsewhere")] == ["other"]
    assert len(client.queued_jobs(limit=1)) == 2  # limit applies to queued and deferred each


def test_queue_size_excludes_running_and_finished_jobs(client: Any, worker: AnyWorker) -> None:
    for i in range(5):
        client.enqueue("f", i)
    first, _ = worker.take(2)
    worker.succeed(first, 1)
    assert client.queue_size() == 3
    assert client.queue_size("empty-queue") == 0


def test_all_job_results(client: Any, worker: AnyWorker) -> None:
    jobs = [client.enqueue("f", i) for i in range(3)]
    other = client.enqueue("g", _queue_name="q2")
    for d in worker.take():
        worker.succeed(d, d.job_id)
    (d,) = worker.take(queue="q2")
    worker.succeed(d, "other")
    results = client.all_job_results()
    assert {r.job_id for r in results} == {j.job_id for j in jobs} | {other.job_id}
    assert all(r.success for r in results)
    times = [r.finish_time for r in results]
    assert times == sorted(times, reverse=True)


def test_dead_letters_can_be_listed_requeued_and_deleted(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("unknown_function", 1)
    (d,) = worker.take()
    worker.dead_letter(d, "unknown_function", "no function 'unknown_function'")
    assert job.status() is JobStatus.COMPLETE  # with a failed result naming the reason
    with pytest.raises(jobwire.JobFailed, match="unknown_function"):
        job.result()
    (letter,) = client.dead_letters()
    assert letter.job_id == job.job_id and letter.reason == "unknown_function"
    assert letter.data == d.data and "unknown_function" in letter.message
    requeued = client.requeue_dead_letter(letter.entry_id)
    assert requeued.job_id == job.job_id and requeued.status() is JobStatus.QUEUED
    assert client.dead_letters() == []
    assert requeued.info().args == (1,)

    (d,) = worker.take()
    worker.dead_letter(d, "x", "y")
    (letter,) = client.dead_letters()
    assert client.delete_dead_letter(letter.entry_id) is True
    assert client.delete_dead_letter(letter.entry_id) is False
    with pytest.raises(jobwire.JobNotFound):
        client.requeue_dead_letter(letter.entry_id)


def test_undecodable_messages_are_dead_lettered_by_raw_bytes(
    make_redis_client: Any, redis_worker: Worker
) -> None:
    client, worker = make_redis_client(), redis_worker
    worker.run(worker.consumer.dead_letter(reason="undecodable", message="garbage", data=b"\x00"))
    (letter,) = client.dead_letters()
    assert letter.job_id is None and letter.data == b"\x00"
    with pytest.raises(jobwire.DecodeError):
        client.requeue_dead_letter(letter.entry_id)  # no job id to enqueue it under


def test_dead_letter_stream_is_capped(redis_url: str) -> None:
    w = Worker(redis_url)
    w.consumer.dead_letter_cap = 5
    for i in range(8):
        w.run(w.consumer.dead_letter(reason="r", message=str(i), data=b"x"))
    letters = w.client.dead_letters()
    assert [letter.message for letter in letters] == ["7", "6", "5", "4", "3"]
    w.close()
