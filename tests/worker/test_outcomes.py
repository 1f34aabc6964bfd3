"""Every executor x {success, exception, timeout, abort, retry}, seen through the client."""

from __future__ import annotations

import pytest

import jobwire
from jobwire import JobStatus
from tests.conftest import on_both
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker

from .jobs import EXECUTORS

#: every executor on one Redis; on a Redis Cluster (3 masters, 3 replicas) the loop executor
#: (what differs on a cluster is Redis's side, not the executor's)
pytestmark = pytest.mark.parametrize(
    ("executor", "redis_url"),
    [*((e, "single") for e in EXECUTORS), ("loop", "cluster")],
    indirect=["redis_url"],
)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    return on_both(request)


def test_success(executor: str, start_worker: StartWorker, client: jobwire.Client) -> None:
    start_worker()
    job = client.enqueue(f"ok_{executor}", 21)
    value = job.result(timeout=30)
    assert (value["double"] if executor == "process" else value) == 42
    assert job.status() is JobStatus.COMPLETE
    (result,) = job.results()
    assert result.success and result.job_try == 1 and result.function == f"ok_{executor}"


def test_exception(executor: str, start_worker: StartWorker, client: jobwire.Client) -> None:
    start_worker()
    job = client.enqueue(f"fail_{executor}")
    with pytest.raises(jobwire.JobFailed) as info:
        job.result(timeout=30)
    assert info.value.error.type == "tests.worker.jobs.JobError"
    assert info.value.error.message == f"{executor} failed"
    assert f"fail_{executor}" in info.value.error.traceback
    assert job.status() is JobStatus.COMPLETE
    assert [r.outcome for r in job.results()] == ["error"]


def test_timeout(executor: str, start_worker: StartWorker, client: jobwire.Client) -> None:
    worker = start_worker()
    job = client.enqueue(f"timeout_{executor}")
    with pytest.raises(jobwire.JobFailed) as info:
        job.result(timeout=30)
    assert info.value.outcome == "timeout"
    assert info.value.error.type == "jobwire.JobTimedOut"
    # the slot (thread) or the process was replaced: the worker still runs jobs of that kind
    assert client.enqueue(f"ok_{executor}", 1).result(timeout=30) is not None
    if executor == "process":
        assert worker.processes is not None and worker.processes.replaced >= 1
    if executor == "thread":
        assert worker.threads.abandoned == 1


def test_abort(executor: str, start_worker: StartWorker, client: jobwire.Client) -> None:
    worker = start_worker()
    job = client.enqueue(f"slow_{executor}")
    assert wait_until(lambda: job.status() is JobStatus.IN_PROGRESS)
    assert job.abort(timeout=30) is True
    with pytest.raises(jobwire.JobAborted):
        job.result(timeout=5)
    assert job.result_info().outcome == "aborted"
    assert job.status() is JobStatus.COMPLETE
    if executor == "process":
        assert worker.processes is not None and worker.processes.replaced >= 1
    assert client.enqueue(f"ok_{executor}", 1).result(timeout=30) is not None


def test_retry(executor: str, start_worker: StartWorker, client: jobwire.Client) -> None:
    start_worker()
    job = client.enqueue(f"flaky_{executor}")
    assert job.result(timeout=30) == "try 3"
    history = job.results()
    assert [r.outcome for r in history] == ["success", "error", "error"]
    assert [r.job_try for r in history] == [3, 2, 1]
    assert "Retry" in history[1].error.type
