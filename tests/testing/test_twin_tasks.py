"""Tasks in the in-memory twins: registered by ``functions=[...]``, run by the worker's rules.

Retries of ``retry_on`` follow the shared rule (``jobwire.worker.attempt``): without a
``backoff`` they run again at once; with one, the job is deferred for that long (eager mode
runs it through regardless, as it does a ``Retry(defer=...)``).
"""

from __future__ import annotations

import asyncio
import time

import pytest

import jobwire
from jobwire import JobStatus, task
from jobwire.testing import AsyncMemoryClient, MemoryClient
from tests.worker.task_jobs import connect, greet


@task(retry_on=ConnectionError, max_tries=3)
def dial(ctx: dict[str, object], number: str) -> str:
    if int(str(ctx["job_try"])) < 3:
        raise ConnectionError("busy")
    return f"{number} answered on try {ctx['job_try']}"


def test_eager_twins_run_tasks() -> None:
    client = MemoryClient(functions=[greet, dial], eager=True)
    assert greet.enqueue(client, "ada", punctuation="?").result() == "hello ada?"
    job = dial.enqueue(client, "555")
    assert job is not None and job.result() == "555 answered on try 3"
    assert [r.job_try for r in job.results()] == [3, 2, 1]

    async def main() -> str:
        aclient = AsyncMemoryClient(functions=[greet], eager=True)
        ajob = await greet.enqueue(aclient, "bob")
        assert ajob is not None
        return str(await ajob.result())

    assert asyncio.run(main()) == "hello bob!"


def test_run_jobs_retries_at_once_without_a_backoff_and_defers_with_one() -> None:
    client = MemoryClient(functions=[dial, connect])
    immediate = dial.enqueue(client, "1")
    assert client.run_jobs() == 3 and immediate is not None
    assert immediate.status() is JobStatus.COMPLETE
    deferred = connect.enqueue(client, succeed_on=2)
    assert deferred is not None and client.run_jobs() == 1
    assert deferred.status() is JobStatus.DEFERRED and client.run_jobs() == 0
    time.sleep(0.25)  # connect's backoff: 0.2 s before its second try
    assert client.run_jobs() == 1 and deferred.result() == 2
    again = connect.enqueue(client, succeed_on=2)
    assert again is not None and client.run_jobs(include_deferred=True) == 2


def test_a_twin_refuses_what_the_worker_refuses() -> None:
    with pytest.raises(jobwire.InvalidArgument, match="not async"):
        MemoryClient(functions=[task(dial, executor="loop")])
