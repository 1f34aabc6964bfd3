"""An in-process worker on the test's Redis (its loop runs in a background thread)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import LoopThread

import jobwire
from jobwire.worker import Worker

from .jobs import all_functions

StartWorker = Callable[..., Worker]


@pytest.fixture
def start_worker(redis_url: str, loop_thread: LoopThread) -> Iterator[StartWorker]:
    started: list[Worker] = []

    def start(functions: Any = None, url: str | None = None, **options: Any) -> Worker:
        options.setdefault("allow_abort_jobs", True)
        options.setdefault("process_workers", 2)
        worker = Worker(
            all_functions() if functions is None else functions,
            redis_settings=url or redis_url,
            handle_signals=False,
            **options,
        )
        loop_thread.run(worker.startup())
        started.append(worker)
        return worker

    yield start
    for worker in started:
        loop_thread.loop.call_soon_threadsafe(worker.stop)
        loop_thread.run(worker.shutdown(), timeout=60)


@pytest.fixture
def client(redis_url: str) -> Iterator[jobwire.Client]:
    with jobwire.Client.from_url(redis_url) as c:
        yield c
