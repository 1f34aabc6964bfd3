"""Status, results, waiting, history and abort, for both clients."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

import jobwire
from jobwire import JobStatus

from .conftest import AnyWorker, Worker


class CardDeclined(Exception):
    pass


def later(delay: float, action: Any) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_status_follows_the_job_through_its_life(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f", 1)
    assert job.status() is JobStatus.QUEUED
    (d,) = worker.take()
    assert job.status() is JobStatus.IN_PROGRESS
    info = job.info()
    assert info.status is JobStatus.IN_PROGRESS and info.worker == "test-worker"
    assert info.start_time is not None
    worker.succeed(d, {"ok": True})
    assert job.status() is JobStatus.COMPLETE
    assert job.info() is None
    assert client.job("nope").status() is JobStatus.NOT_FOUND
    assert client.job("nope").info() is None


def test_result_returns_the_value(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f")
    (d,) = worker.take()
    worker.succeed(d, [1, "two"])
    assert job.result() == [1, "two"]
    assert job.result(timeout=0) == [1, "two"]
    info = job.result_info()
    assert info.success and info.value == [1, "two"] and info.worker == "test-worker"
    assert info.duration.total_seconds() >= 0


def test_result_waits_for_the_write_without_polling(
    make_redis_client: Any, redis_worker: Worker, redis_url: str
) -> None:
    worker = redis_worker
    job = make_redis_client().enqueue("f")
    (d,) = worker.take()
    with redis.Redis.from_url(redis_url) as r:
        before = r.info("commandstats")
        thread = later(1.5, lambda: worker.succeed(d, "late"))
        assert job.result(timeout=30) == "late"
        after = r.info("commandstats")
    thread.join()

    def calls(stats: dict[str, Any], name: str) -> int:
        return int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))

    # the waiter blocked on the done list: one or two BLMOVEs (the socket-timeout chunk),
    # not a poll every few milliseconds
    assert calls(after, "blmove") - calls(before, "blmove") <= 2
    assert calls(after, "lindex") - calls(before, "lindex") <= 3


def test_result_timeout(client: Any) -> None:
    job = client.enqueue("f")
    started = time.monotonic()
    with pytest.raises(jobwire.JobTimeout) as info:
        job.result(timeout=0.5)
    assert time.monotonic() - started >= 0.5
    assert info.value.job_id == job.job_id
    assert isinstance(info.value, TimeoutError)
    assert job.status() is JobStatus.QUEUED  # waiting does not disturb the job


def test_result_of_an_unknown_job(client: Any) -> None:
    with pytest.raises(jobwire.ResultNotFound):
        client.job("missing").result(timeout=1)


def test_failed_jobs_raise_jobfailed_with_the_error_record(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("charge")
    (d,) = worker.take()
    try:
        raise CardDeclined("card declined")
    except CardDeclined as exc:
        worker.fail(d, exc)
    with pytest.raises(jobwire.JobFailed) as info:
        job.result()
    assert info.value.error.type.endswith("test_results.CardDeclined")
    assert info.value.error.message == "card declined"
    assert "CardDeclined" in info.value.error.traceback
    assert info.value.outcome == "error"
    assert not job.result_info().success
    assert job.status() is JobStatus.COMPLETE


def test_pickle_jobs_reraise_the_original_exception(make_client: Any, worker: AnyWorker) -> None:
    client = make_client(accept=("json", "msgpack", "pickle"))
    job = client.enqueue("charge", _serializer="pickle")
    (d,) = worker.take()
    worker.fail(d, CardDeclined("declined"))
    with pytest.raises(CardDeclined, match="declined"):
        job.result()
    plain = make_client()  # no pickle: the portable record instead
    with pytest.raises(jobwire.JobFailed):
        plain.job(job.job_id).result()


def test_timed_out_jobs_report_the_outcome(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("slow")
    (d,) = worker.take()
    worker.fail(d, TimeoutError("took more than 1s"), outcome="timeout")
    with pytest.raises(jobwire.JobFailed) as info:
        job.result()
    assert info.value.outcome == "timeout"


def test_results_history_keeps_every_execution_newest_first(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("flaky")
    for attempt in (1, 2):
        (d,) = worker.take()
        assert d.tries == attempt
        assert worker.retry(d, RuntimeError(f"attempt {attempt}"))
        assert job.status() is JobStatus.QUEUED
        with pytest.raises(jobwire.JobTimeout):
            job.result(timeout=0.1)  # a failed attempt is not the final result
    (d,) = worker.take()
    worker.succeed(d, "third time")
    assert job.result() == "third time"
    history = job.results()
    assert [r.outcome for r in history] == ["success", "error", "error"]
    assert [r.job_try for r in history] == [3, 2, 1]


def test_history_is_capped_at_ten(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f")
    for i in range(12):
        (d,) = worker.take()
        worker.retry(d, RuntimeError(str(i)))
    assert len(job.results()) == 10
    assert job.results()[0].error.message == "11"


def test_retry_with_a_delay_defers_the_job(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f")
    (d,) = worker.take()
    worker.retry(d, RuntimeError("later"), defer=60)
    assert job.status() is JobStatus.DEFERRED
    assert job.info().job_try == 2


def test_abort_a_queued_job(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f")
    assert job.abort() is True
    assert worker.take() == []
    assert client.queue_size() == 0
    with pytest.raises(jobwire.JobAborted):
        job.result()
    assert job.result_info().outcome == "aborted"


def test_abort_a_deferred_job(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f", _defer_by=0.2)
    assert job.abort() is True
    time.sleep(0.3)
    worker.promote()
    assert worker.take() == []
    assert client.queued_jobs() == []


def test_abort_a_running_job(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f")
    (d,) = worker.take()

    def worker_notices_and_stops() -> None:
        deadline = time.monotonic() + 10
        while not worker.abort_requested(d):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        worker.fail(d, RuntimeError("aborted"), outcome="aborted")

    thread = later(0.2, worker_notices_and_stops)
    assert job.abort(timeout=30) is True
    thread.join()
    assert job.status() is JobStatus.COMPLETE


def test_abort_of_a_running_job_that_finishes_anyway(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f")
    (d,) = worker.take()
    thread = later(0.2, lambda: worker.succeed(d, "done first"))
    assert job.abort(timeout=30) is False
    thread.join()
    assert job.result() == "done first"


def test_abort_times_out_when_the_job_keeps_running(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f")
    worker.take()
    with pytest.raises(jobwire.JobTimeout):
        job.abort(timeout=0.3)


def test_abort_of_an_unknown_or_finished_job_is_false(client: Any, worker: AnyWorker) -> None:
    assert client.job("nope").abort() is False
    job = client.enqueue("f")
    (d,) = worker.take()
    worker.succeed(d, 1)
    assert job.abort() is False
