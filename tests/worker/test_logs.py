"""What the worker logs of a job: one line each, the error and its traceback when it failed."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import jobwire
from jobwire.worker import func
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker


class CardDeclined(Exception):
    pass


async def charge(ctx: dict[str, Any], card: str) -> None:
    raise CardDeclined(f"card {card} declined")


def _lines(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


def test_a_failed_job_logs_its_error_and_traceback_retry_then_final(
    start_worker: StartWorker, client: jobwire.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobwire")
    start_worker([func(charge, max_tries=2, retry_on=(CardDeclined,), backoff=0.01)])
    job = client.enqueue("charge", "4242")
    with pytest.raises(jobwire.JobFailed):
        job.result(timeout=30)
    assert wait_until(lambda: len(_lines(caplog, job.job_id)) >= 2, 5)
    retried, final = _lines(caplog, job.job_id)[-2:]
    assert retried.levelno == logging.WARNING and final.levelno == logging.ERROR
    for record in (retried, final):
        message = record.getMessage()
        assert "CardDeclined: card 4242 declined" in message
        assert "Traceback (most recent call last)" in message
        assert 'raise CardDeclined(f"card {card} declined")' in message
    assert "next try in" in retried.getMessage() and "next try in" not in final.getMessage()


def test_a_flood_of_one_failure_logs_each_job_and_the_traceback_once(
    start_worker: StartWorker, client: jobwire.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobwire")
    start_worker([func(charge, max_tries=1)])
    jobs = [client.enqueue("charge", "same") for _ in range(5)]
    for job in jobs:
        with pytest.raises(jobwire.JobFailed):
            job.result(timeout=30)
    assert wait_until(lambda: len(_lines(caplog, "card same declined")) == 5, 5)
    lines = [r.getMessage() for r in _lines(caplog, "card same declined")]
    assert all(any(job.job_id in line for line in lines) for job in jobs)  # every job
    assert sum("Traceback (most recent call last)" in line for line in lines) == 1
    assert sum("traceback as logged above" in line for line in lines) == 4
    other = client.enqueue("charge", "other")
    with pytest.raises(jobwire.JobFailed):
        other.result(timeout=30)
    assert wait_until(lambda: len(_lines(caplog, other.job_id)) == 1, 5)
    assert "Traceback" in _lines(caplog, other.job_id)[0].getMessage()
