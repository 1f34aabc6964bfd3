"""Test helpers shared by several suites."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import inspect
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from jobwire.consumer import Consumer
from jobwire.models import Delivery
from jobwire.protocol import Gen
from jobwire.stored import index_entry
from jobwire.wire import ResultEnvelope


def need(module: str, extra: str = "examples") -> None:
    """Skip the test when ``module`` is not installed; in CI fail instead (CI installs it)."""
    if importlib.util.find_spec(module) is not None:
        return
    message = f"{module} is not installed: install the {extra!r} extra to run this test"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


class LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Wait (in a test, never in product code) until ``condition()`` is truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def public_methods(cls: type) -> dict[str, object]:
    """The public methods of a class, by name (to compare two interfaces)."""
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and (inspect.isfunction(member) or inspect.ismethod(member))
    }


def fetch(consumer: Consumer, count: int) -> Gen[list[Delivery]]:
    """Take up to ``count`` ready jobs (the worker's fetch, without the next due time)."""
    return (yield from consumer.fetch_and_next_due(count))[0]


def finish(
    consumer: Consumer, delivery: Delivery, result: ResultEnvelope, keep: float | None
) -> Gen[None]:
    """Record one final result, as the worker's group commit does for many."""
    data = consumer.core.codec.encode_result(result)
    yield from consumer.finish_encoded([(delivery, data, keep)], [result])


def stored_envelope(r: Any, keys: Any, job_id: str | bytes) -> bytes | None:
    """A job's envelope as Redis holds it (SPEC 12.1), read with plain commands.

    In its hash's ``data`` while deferred (or when an older producer wrote it), else in its
    stream entry's ``data``. ``r`` is a blocking redis-py client, ``keys`` the QueueKeys.
    """
    key = keys.job(job_id) if isinstance(job_id, str) else keys.base.encode() + b"job:" + job_id
    data, entry = r.hmget(key, "data", "entry")
    if data is None and entry is None:  # queued without a hash: its entry is in the index
        indexed = r.hget(index_key(keys, job_id), job_id)  # "ENTRY" or "ENTRY TOKEN"
        entry = index_entry(indexed) if indexed else None
    if data is None and entry is not None:
        found = r.xrange(keys.stream, entry, entry)
        data = found[0][1].get(b"data") if found else None
    return data  # type: ignore[no-any-return]


def index_key(keys: Any, job_id: str | bytes) -> str:
    """The index bucket of a job queued without a hash (SPEC 12.1), computed as SPEC says."""
    raw = job_id.encode() if isinstance(job_id, str) else job_id
    return f"{keys.base}queued:{hashlib.sha1(raw).hexdigest()[:2]}"


def job_stored(r: Any, keys: Any, job_id: str) -> bool:
    """Whether Redis holds the job (deferred, queued or running): a hash, or an index field."""
    return bool(r.exists(keys.job(job_id)) or r.hexists(index_key(keys, job_id), job_id))
