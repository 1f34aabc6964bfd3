"""Tasks under a real worker: their options (timeout, tries, executor) and ``retry_on``.

The retry rule itself (which exception retries, after how long) is pure and tested here
too, without Redis: :func:`jobwire.worker.attempt.conclude` and ``backoff_delay``.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

import jobwire
from jobwire import Backoff, JobStatus
from jobwire.wire import JobEnvelope
from jobwire.worker import Retry, func
from jobwire.worker.attempt import Run, backoff_delay, conclude
from tests.helpers.workers import StartWorker

from .task_jobs import ALL, bad_value, connect, greet, slow, square

# ------------------------------------------------------------------ the pure rule


def _run(function: Any, job_try: int, max_tries: int = 5) -> Run:
    job = JobEnvelope(id="j", function=function.name, queue="default", enqueued_ms=0)
    return Run(job, function, job_try, max_tries, None, 60.0)


@pytest.mark.parametrize(
    ("jitter", "low", "high"), [("none", 1.0, 1.0), ("equal", 0.5, 1.0), ("full", 0.0, 1.0)]
)
def test_backoff_doubles_per_try_up_to_its_cap_within_its_jitter(
    jitter: Any, low: float, high: float
) -> None:
    policy = Backoff(base=0.5, cap=10, jitter=jitter)
    for job_try, full in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (6, 10.0), (10_000, 10.0)]:
        assert backoff_delay(policy, job_try, 0.0) == pytest.approx(full * low)
        assert backoff_delay(policy, job_try, 0.999999) == pytest.approx(full * high, rel=1e-5)
        assert full * low <= backoff_delay(policy, job_try, 0.5) <= full * high


def test_a_listed_exception_retries_with_backoff_until_the_last_try() -> None:
    function = func(connect.fn, retry_on=OSError, backoff=Backoff(base=2, jitter="none"))
    delays = [conclude(_run(function, n), "error", exc=ConnectionError()).retry_in for n in (1, 2)]
    assert delays == [2.0, 4.0]  # a subclass of a listed class counts
    last = conclude(_run(function, 5), "error", exc=ConnectionError("down"))
    assert last.retry_in is None and isinstance(last.exception, ConnectionError)
    assert last.error is not None and last.error.type.endswith("ConnectionError")


def test_an_unlisted_exception_is_final_at_once() -> None:
    final = conclude(_run(bad_value, 1), "error", exc=ValueError("no"))
    assert final.retry_in is None and isinstance(final.exception, ValueError)
    never = conclude(_run(greet, 1), "error", exc=ConnectionError())  # no retry_on at all
    assert never.retry_in is None


def test_without_a_backoff_retry_on_waits_from_the_workers_retry_backoff() -> None:
    function = func(connect.fn, retry_on=ConnectionError)
    final = conclude(_run(function, 3), "error", exc=ConnectionError(), backoff=1.0, rand=lambda: 0)
    assert final.retry_in == 2.0  # 1 * 2**2 = 4, equal jitter keeps at least half
    twin = conclude(_run(function, 3), "error", exc=ConnectionError(), backoff=0.0)
    assert twin.retry_in == 0.0  # the in-memory twin retries at once


def test_retry_works_as_before_and_uses_the_functions_backoff_when_it_has_one() -> None:
    assert conclude(_run(greet, 2), "error", exc=Retry(), backoff=1.5).retry_in == 3.0
    assert conclude(_run(greet, 2), "error", exc=Retry(defer=7)).retry_in == 7.0
    final = conclude(_run(connect, 2), "error", exc=Retry())
    assert final.retry_in == pytest.approx(0.4)
    at_limit = conclude(_run(greet, 5), "error", exc=Retry())
    assert at_limit.retry_in is None and isinstance(at_limit.exception, RuntimeError)


# ------------------------------------------------------------------ under a worker


def test_a_worker_runs_tasks_with_their_options(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    worker = start_worker(list(ALL))
    assert worker.functions["connect"].max_tries == 4
    assert greet.enqueue(client, "ada").result(timeout=30) == "hello ada!"
    assert square.enqueue(client, 7).result(timeout=60) == 49  # in the process pool
    job = slow.enqueue(client, 10)
    with pytest.raises(jobwire.JobFailed):
        job.result(timeout=30)  # its own timeout: 0.3 s, not the worker's 300 s
    info = job.result_info()
    assert info is not None and info.outcome == "timeout" and info.duration.total_seconds() < 5


def test_retry_on_retries_up_to_max_tries_with_growing_delays(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    start_worker(list(ALL))
    job = connect.enqueue(client, succeed_on=10)
    with pytest.raises(jobwire.JobFailed) as failed:
        job.result(timeout=30)
    assert "ConnectionError" in failed.value.error.type
    runs = sorted(job.results(), key=lambda r: r.job_try)
    assert [r.job_try for r in runs] == [1, 2, 3, 4]  # max_tries=4
    gaps = [(b.start_time - a.finish_time).total_seconds() for a, b in pairwise(runs)]
    for gap, delay in zip(gaps, [0.2, 0.4, 0.8], strict=True):  # base 0.2 s, doubling, no jitter
        assert delay - 0.02 <= gap < delay + 2, gaps
    assert job.status() is JobStatus.COMPLETE


def test_retry_on_stops_retrying_once_it_succeeds_and_others_fail_at_once(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    start_worker(list(ALL))
    assert connect.enqueue(client, succeed_on=2).result(timeout=30) == 2
    job = bad_value.enqueue(client)
    with pytest.raises(jobwire.JobFailed) as failed:
        job.result(timeout=30)
    assert failed.value.error.type.endswith("ValueError")
    assert [r.job_try for r in job.results()] == [1]  # max_tries=5, but not retried
