"""Errors and warnings that say what happened and what to do (every client kind)."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest

import jobwire
from jobwire import JobStatus
from jobwire.testing import AsyncMemoryClient, MemoryClient

from .conftest import AnyWorker, ClientFactory


def test_a_result_looked_for_in_the_wrong_queue_names_the_right_one(
    make_client: ClientFactory, worker: AnyWorker
) -> None:
    emails = make_client(queue_name="emails")
    job = emails.enqueue("send", 1)
    (d,) = worker.take(queue="emails")
    worker.succeed(d, "sent")
    default = make_client()
    with pytest.raises(jobwire.ResultNotFound) as caught:
        default.job(job.job_id).result(timeout=1)
    message = str(caught.value)
    assert "in queue 'default'" in message
    assert f"it is in queue 'emails': use client.job({job.job_id!r}, queue_name='emails')" in (
        message
    )
    assert default.job(job.job_id, queue_name="emails").result(timeout=1) == "sent"
    waiting = emails.enqueue("send", 2)  # queued, in the index (SPEC 12.1): found there too
    with pytest.raises(jobwire.ResultNotFound, match="it is in queue 'emails'"):
        default.job(waiting.job_id).result(timeout=1)


def test_a_job_found_nowhere_says_how_to_search_another_queue(client: Any) -> None:
    with pytest.raises(jobwire.ResultNotFound, match=r"pass queue_name=") as caught:
        client.job("never-enqueued").result(timeout=1)
    assert caught.value.job_id == "never-enqueued"


def test_a_job_that_ran_out_of_time_is_job_timed_out_and_its_outcome_says_so(
    client: Any, worker: AnyWorker
) -> None:
    job = client.enqueue("slow")
    assert job.outcome() is None  # waiting: not ended
    (d,) = worker.take()
    assert job.outcome() is None  # running
    worker.fail(d, TimeoutError("job exceeded 1s"), outcome="timeout")
    assert job.status() is JobStatus.COMPLETE
    assert job.outcome() == "timeout"
    with pytest.raises(jobwire.JobTimedOut) as caught:
        job.result(timeout=1)
    assert isinstance(caught.value, jobwire.JobFailed)
    assert not isinstance(caught.value, TimeoutError)  # not the wait's timeout


def test_outcome_tells_success_failure_and_abort_apart(client: Any, worker: AnyWorker) -> None:
    ok, bad, gone = client.enqueue("f"), client.enqueue("g"), client.enqueue("h")
    first, second = worker.take(2)
    worker.succeed(first, 1)
    worker.fail(second, ValueError("no"))
    assert gone.abort(timeout=1) is True
    assert (ok.outcome(), bad.outcome(), gone.outcome()) == ("success", "error", "aborted")
    assert client.job("unknown").outcome() is None


def test_waiting_too_long_is_wait_timeout_the_former_job_timeout(client: Any) -> None:
    job = client.enqueue("f")
    with pytest.raises(jobwire.WaitTimeout) as caught:
        job.result(timeout=0.05)
    assert jobwire.JobTimeout is jobwire.WaitTimeout
    assert isinstance(caught.value, TimeoutError) and caught.value.job_id == job.job_id


def test_the_blocking_client_on_a_running_loop_warns_once(redis_url: str) -> None:
    async def main() -> list[warnings.WarningMessage]:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with jobwire.Client.from_url(redis_url) as client:
                client.enqueue("f")
                client.queue_size()
        return [w for w in seen if issubclass(w.category, RuntimeWarning)]

    seen = asyncio.run(main())
    assert len(seen) == 1
    assert "blocks that loop" in str(seen[0].message) and "AsyncClient" in str(seen[0].message)
    assert seen[0].filename == __file__  # points at the caller's line

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning off the loop
        with jobwire.Client.from_url(redis_url) as client:
            client.enqueue("f")


def test_the_twin_refuses_to_wait_forever_for_a_job_nothing_will_run() -> None:
    client = MemoryClient()
    job = client.enqueue("f")
    with pytest.raises(jobwire.WaitTimeout, match=r"would wait forever.*run_jobs"):
        job.result()
    assert job.status() is JobStatus.QUEUED  # nothing was lost
    client.set_complete(job.job_id, 3)
    assert job.result() == 3


def test_the_async_twin_refuses_too_but_waits_when_given_a_timeout() -> None:
    async def main() -> Any:
        client = AsyncMemoryClient()
        job = await client.enqueue("f")
        with pytest.raises(jobwire.WaitTimeout, match="would wait forever"):
            await job.result()
        waiting = asyncio.ensure_future(job.result(timeout=30))
        await asyncio.sleep(0.01)
        client.set_complete(job.job_id, "done")
        return await waiting

    assert asyncio.run(main()) == "done"
