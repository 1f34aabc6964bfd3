"""``Job.retry``: a job that failed for good is enqueued again with its arguments."""

from __future__ import annotations

import time
from typing import Any

import pytest

import jobwire
from jobwire import JobStatus
from tests.helpers.support import stored_envelope

from .conftest import AnyWorker, Worker


class CardDeclined(Exception):
    pass


@pytest.mark.parametrize("outcome", ["error", "timeout"])
def test_a_failed_job_retried_runs_again_with_its_arguments(
    client: Any, worker: AnyWorker, outcome: str
) -> None:
    job = client.enqueue("charge", 42, currency="EUR", _job_id="order-1")
    (d,) = worker.take()
    worker.fail(d, CardDeclined("declined"), outcome=outcome)
    assert job.outcome() == outcome

    again = job.retry()
    assert again is not None and again.job_id == "order-1"
    assert again.status() is JobStatus.QUEUED
    (d2,) = worker.take()
    envelope = worker.decode(d2.data)
    assert (envelope.args, envelope.kwargs) == ((42,), {"currency": "EUR"})
    worker.succeed(d2, "paid")
    assert job.result() == "paid"
    assert [r.outcome for r in job.results()] == ["success", outcome]
    with pytest.raises(jobwire.JobNotFound, match="succeeded"):
        job.retry()  # the copy went with the enqueue, and success keeps none


def test_a_succeeded_or_unknown_job_cannot_be_retried(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f", 1)
    (d,) = worker.take()
    worker.succeed(d, 1)
    with pytest.raises(jobwire.JobNotFound, match="no failed run kept"):
        job.retry()
    with pytest.raises(jobwire.JobNotFound):
        client.job("never-enqueued").retry()


def test_an_aborted_job_can_be_retried(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f", "x", _job_id="aborted-1")
    assert job.abort(timeout=0)
    assert job.outcome() == "aborted"
    assert job.retry() is not None
    (d,) = worker.take()
    assert worker.decode(d.data).args == ("x",)


def test_retry_when_the_id_is_taken_returns_none(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f", 1, _job_id="taken-1")
    (d,) = worker.take()
    worker.fail(d, CardDeclined("no"))
    assert job.retry() is not None
    assert job.retry() is None  # queued again: the id is taken
    assert len(client.queued_jobs()) == 1
    (d,) = worker.take()
    assert job.retry() is None  # running
    assert client.enqueue("f", 2).retry() is None  # waiting, never failed


def test_retry_ignores_unique_while_result_kept(make_client: Any, worker: AnyWorker) -> None:
    client = make_client(unique_while_result_kept=True)
    job = client.enqueue("f", 1, _job_id="unique-1")
    (d,) = worker.take()
    worker.fail(d, CardDeclined("no"))
    assert client.enqueue("f", 1, _job_id="unique-1") is None  # the result keeps the id
    assert job.retry() is not None  # an explicit retry does not


def test_the_failed_copy_expires_with_the_result(client: Any, worker: AnyWorker) -> None:
    kept = client.enqueue("f", 1, _job_id="short-1")
    none = client.enqueue("f", 2, _job_id="none-1")
    d1, d2 = worker.take()
    worker.fail(d1, CardDeclined("no"), keep=0.3)
    worker.fail(d2, CardDeclined("no"), keep=0)
    with pytest.raises(jobwire.JobNotFound):
        none.retry()  # no result kept: no copy either
    time.sleep(0.5)
    assert kept.status() is JobStatus.NOT_FOUND
    with pytest.raises(jobwire.JobNotFound, match="expired"):
        kept.retry()


def test_the_copy_has_the_results_expiry_and_goes_on_enqueue(
    producer: jobwire.Client, redis_worker: Worker
) -> None:
    keys = producer._core.keys()
    job = producer.enqueue("f", 1, _job_id="ttl-1")
    assert job is not None
    (d,) = redis_worker.take()
    redis_worker.fail(d, CardDeclined("no"), keep=30)
    ttl = producer.redis.pttl(keys.failed("ttl-1"))
    assert 0 < ttl <= 30_000
    assert abs(ttl - producer.redis.pttl(keys.results("ttl-1"))) < 1000
    forever = producer.enqueue("f", 2, _job_id="ttl-2")
    assert forever is not None
    (d,) = redis_worker.take()
    redis_worker.fail(d, CardDeclined("no"), keep=None)
    assert producer.redis.pttl(keys.failed("ttl-2")) == -1
    # a new enqueue of the id (not a retry) removes the stale copy at once
    assert producer.enqueue("f", 3, _job_id="ttl-2") is not None
    assert not producer.redis.exists(keys.failed("ttl-2"))


def test_a_kept_copy_naming_another_job_is_refused(
    producer: jobwire.Client, redis_worker: Worker
) -> None:
    keys = producer._core.keys()
    other = producer.enqueue("f", 1, _job_id="victim")
    assert other is not None
    raw = stored_envelope(producer.redis, keys, "victim")
    producer.redis.set(keys.failed("forged"), raw)
    with pytest.raises(jobwire.wire.DecodeError):
        producer.job("forged").retry()
    producer.redis.set(keys.failed("junk"), b"\x00not an envelope")
    with pytest.raises(jobwire.wire.DecodeError):
        producer.job("junk").retry()
