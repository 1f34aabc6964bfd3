"""A task that names its queue is served there: the worker listens to it, or says it won't."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import jobwire
from jobwire.worker import Worker
from tests.helpers.workers import StartWorker


@jobwire.task(queue_name="images")
async def resize(ctx: dict[str, Any], size: int) -> int:
    return size // 2


async def plain(ctx: dict[str, Any]) -> str:
    return "plain"


def test_the_worker_serves_the_queues_its_tasks_name(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    worker = start_worker([resize, plain])
    assert [q.name for q in worker.queues] == ["default", "images"]
    job = resize.enqueue(client, 256)
    assert job is not None and job.queue_name == "images"
    assert job.result(timeout=10) == 128
    assert client.enqueue("plain").result(timeout=10) == "plain"


def test_a_task_on_a_queue_not_served_is_a_warning_at_startup(
    start_worker: StartWorker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="jobwire")
    worker = start_worker([resize, plain], queue_names=["default"])
    assert [q.name for q in worker.queues] == ["default"]
    (line,) = [r.getMessage() for r in caplog.records if "does not serve" in r.getMessage()]
    assert "task resize enqueues its jobs to queue 'images'" in line


def test_queue_names_with_white_space_are_refused() -> None:
    with pytest.raises(jobwire.InvalidArgument, match="white space"):
        Worker([plain], queue_name="a b")
    with pytest.raises(jobwire.InvalidArgument, match="white space"):
        jobwire.task(plain, queue_name="tab\there")
