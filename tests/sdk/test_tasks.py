"""Tasks (``@jobwire.task``) enqueued through every client: name, arguments and options."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import jobwire
from jobwire import JobStatus, task
from jobwire.testing import MemoryClient


@task(queue_name="emails", max_tries=5, timeout=30)
async def send_email(ctx: object, user_id: int, subject: str = "hello") -> None:
    """Send one email (nothing here: only its enqueueing is tested)."""


@task(name="reports.monthly")
def report(ctx: object, month: str) -> str:
    return month


def test_a_task_enqueues_under_its_name_into_its_queue(client: Any) -> None:
    job = send_email.enqueue(client, 42, subject="hi")
    info = job.info()
    assert (info.function, info.args, info.kwargs) == ("send_email", (42,), {"subject": "hi"})
    assert info.queue_name == job.queue_name == "emails"
    named = report.enqueue(client, "2026-11")
    assert named.info().function == "reports.monthly" and named.queue_name == "default"


def test_with_options_gives_a_task_with_enqueue_options(client: Any) -> None:
    welcome = send_email.with_options(job_id="welcome-42", defer_by=60)
    job = welcome.enqueue(client, user_id=42)
    assert job.job_id == "welcome-42" and job.status() is JobStatus.DEFERRED
    assert welcome.enqueue(client, user_id=42) is None
    # the original task is unchanged, and keeps its registration options
    assert send_email.enqueue_options.job_id is None
    assert (welcome.name, welcome.max_tries, welcome.timeout) == ("send_email", 5, 30.0)


def test_client_enqueue_of_a_task_uses_its_options_and_given_ones_win(client: Any) -> None:
    job = client.enqueue(send_email, user_id=1)
    assert job.queue_name == "emails"
    job = client.enqueue(send_email, user_id=2, _queue_name="urgent")
    assert job.queue_name == "urgent" and job.info().kwargs == {"user_id": 2}
    assert client.enqueue("send_email", user_id=3).queue_name == "default"


def test_task_specs_for_enqueue_many(client: Any) -> None:
    jobs = client.enqueue_many([send_email.spec(user_id=n) for n in range(3)])
    assert [j.info().kwargs for j in jobs] == [{"user_id": n} for n in range(3)]
    assert {j.queue_name for j in jobs} == {"emails"}


def test_a_task_calls_its_function() -> None:
    assert report({}, "2026-12") == "2026-12"
    assert send_email.is_async and not report.is_async
    assert (report.executor, send_email.executor) == ("thread", "loop")


@pytest.mark.parametrize(
    "make",
    [
        lambda: task(report, executor="loop"),
        lambda: task(max_tries=0)(report),
        lambda: task(report, retry_on=(ValueError, 5)),  # type: ignore[arg-type]
        lambda: task(report, retry_on=KeyboardInterrupt),  # type: ignore[arg-type]
        lambda: task(report, backoff="fast"),  # type: ignore[arg-type]
        lambda: jobwire.Backoff(base=-1),
        lambda: jobwire.Backoff(jitter="some"),  # type: ignore[arg-type]
        lambda: task(report, queue_name="a}b"),
        lambda: report.with_options(queue_name="a}b").enqueue(MemoryClient(), "x"),
    ],
    ids=[
        "executor", "max_tries", "retry_on item", "retry_on BaseException", "backoff",
        "Backoff base", "Backoff jitter", "queue_name", "with_options queue_name",
    ],
)  # fmt: skip
def test_bad_task_options_are_invalid_arguments(make: Callable[[], object]) -> None:
    with pytest.raises(jobwire.InvalidArgument):
        make()


def test_a_task_given_to_task_keeps_the_options_not_given() -> None:
    again = task(send_email, timeout=5)
    assert (again.timeout, again.max_tries, again.enqueue_options.queue_name) == (5, 5, "emails")
    assert task(report, name="other").name == "other" and report.name == "reports.monthly"
