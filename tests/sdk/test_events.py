"""Following events, reading a job's events and progress: every client, Redis and twins."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis

import jobwire
from jobwire import EventType
from jobwire.keys import QueueKeys
from tests.helpers.clients import ClientFactory
from tests.helpers.support import LoopThread

from .conftest import AnyWorker

E = EventType


def next_of(iterator: Any, loop: LoopThread) -> Callable[[], jobwire.Event]:
    """``next()`` for the sync client's iterator, ``anext()`` for the async one's."""
    if hasattr(iterator, "__anext__"):
        return lambda: loop.run(iterator.__anext__())
    return lambda: next(iterator)


def drain(iterator: Any, loop: LoopThread) -> list[jobwire.Event]:
    step, out = next_of(iterator, loop), []
    while True:
        try:
            out.append(step())
        except (StopIteration, StopAsyncIteration):
            return out


def test_following_receives_an_event_written_after_it_started(
    make_client: ClientFactory, loop_thread: LoopThread, request: pytest.FixtureRequest
) -> None:
    client = make_client()
    redis_kind = not make_client.kind.startswith("memory")  # type: ignore[attr-defined]
    if redis_kind:
        raw = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        raw.config_resetstat()
    got: list[jobwire.Event] = []
    step = next_of(client.events(timeout=10), loop_thread)
    follower = threading.Thread(target=lambda: got.append(step()))
    follower.start()
    time.sleep(0.6)  # blocked, waiting for an event that does not exist yet
    assert not got
    if redis_kind:
        reads = raw.info("commandstats").get("cmdstat_xread", {}).get("calls", 0)
        assert reads <= 2  # one blocking read, not a poll
    sent = time.monotonic()
    job = client.enqueue("send_email", 42)
    follower.join(5)
    assert time.monotonic() - sent < 1.0
    (event,) = got
    assert (event.type, event.job_id, event.function) == (E.ENQUEUED, job.job_id, "send_email")
    assert event.job_try == 1 and event.worker is None and event.queue_name == "default"


def test_since_replays_and_resumes_and_timeout_ends_the_iteration(
    client: Any, worker: AnyWorker, loop_thread: LoopThread
) -> None:
    first = client.enqueue("a")
    second = client.enqueue("b", _queue_name="other")
    (d,) = worker.take()
    everything = drain(client.events(since="0", timeout=0.3), loop_thread)
    assert [(e.type, e.job_id) for e in everything] == [
        (E.ENQUEUED, first.job_id), (E.STARTED, first.job_id),
    ]  # fmt: skip
    assert everything[1].worker == worker.name and everything[1].job_try == 1
    after_first = drain(client.events(since=everything[0].id, timeout=0.2), loop_thread)
    assert [e.type for e in after_first] == [E.STARTED]
    recent = drain(client.events(since=timedelta(minutes=5), timeout=0.2), loop_thread)
    assert recent == everything
    other = drain(client.events("other", since="0", timeout=0.2), loop_thread)
    assert [e.job_id for e in other] == [second.job_id]
    started = time.monotonic()
    assert drain(client.events(timeout=0.3), loop_thread) == []  # nothing new: it ends
    assert 0.25 < time.monotonic() - started < 3
    assert [e.type for e in first.events()] == [E.ENQUEUED, E.STARTED]
    assert d.job_id == first.job_id


def test_bad_arguments_are_invalid_argument(client: Any) -> None:
    for since in ("yesterday", 12, "1-2-3"):
        with pytest.raises(jobwire.InvalidArgument):
            client.events(since=since)
    with pytest.raises(jobwire.InvalidArgument):
        client.events(timeout="soon")
    with pytest.raises(jobwire.InvalidArgument):
        client.stats(resolution="second")
    with pytest.raises(jobwire.InvalidArgument):
        client.stats(function=42)


def test_a_job_with_no_events_and_no_progress(client: Any) -> None:
    job = client.job("never-enqueued")
    assert job.events() == [] and job.progress() is None
    stats = client.stats()
    assert stats.total().executions == 0 and stats.functions() == []
    assert len(stats.buckets) >= 60  # every minute of the last hour, empty ones too


# -------------------------------------------------------------------- hostile storage


def test_hostile_event_entries_are_skipped_or_neutralised(
    make_redis_client: ClientFactory, loop_thread: LoopThread, redis_url: str
) -> None:
    client = make_redis_client()
    log = QueueKeys("jobwire", "default").lifecycle
    r = redis.Redis.from_url(redis_url)
    r.xadd(log, {"job_id": "no-type"})  # missing fields
    r.xadd(log, {"type": "exploded", "job_id": "x"})  # an unknown type
    r.xadd(log, {"type": b"\xff\xfe", "job_id": b"\xff"})
    r.xadd(log, {"type": "started", "job_id": b"bad\xffid", "function": b"\xc3(",
                 "try": "many", "duration_ms": "-5", "worker": b"w\x00\xff"})  # fmt: skip
    r.xadd(log, {"type": "progress", "job_id": "p", "info": "{not json"})
    r.xadd(log, {"type": "succeeded", "job_id": "fine", "try": "99999999999999999999999",
                 "duration_ms": "1e9"})  # fmt: skip
    events = drain(client.events(since="0", timeout=0.3), loop_thread)
    assert [(e.type, e.job_id) for e in events] == [
        (E.STARTED, "bad\\xffid"), (E.PROGRESS, "p"), (E.SUCCEEDED, "fine"),
    ]  # fmt: skip
    odd, progress, fine = events
    assert odd.job_try is None and odd.duration is None and odd.function == "\\xc3("
    assert progress.progress is None
    assert fine.job_try is None and fine.duration is None
    # a stream of nothing but bad entries: the follower reads on, then times out quietly
    r.delete(log)
    for _ in range(150):
        r.xadd(log, {"type": "bogus"})
    assert drain(client.events(since="0", timeout=0.3), loop_thread) == []
    r.delete(log)
    r.set(log, "not a stream")
    with pytest.raises(jobwire.RedisCommandError):  # a wrong type is a typed error
        drain(client.events(since="0", timeout=0.1), loop_thread)


def test_hostile_progress_and_stats_values_read_as_nothing(
    make_redis_client: ClientFactory, redis_url: str
) -> None:
    client = make_redis_client()
    keys = QueueKeys("jobwire", "default")
    r = redis.Redis.from_url(redis_url)
    for bad in (b"\xff", b"[1]", b'{"value": "half"}', b'{"value": NaN}', b'{"value": true}'):
        r.hset(keys.job("j"), "progress", bad)
        assert client.job("j").progress() is None, bad
    r.hset(keys.job("j"), "progress", b'{"value": 7, "message": 3, "at_ms": -1}')
    clamped = client.job("j").progress()
    assert (clamped.value, clamped.message, clamped.time.year) == (1.0, "", 1970)
    now = int(time.time() * 1000)
    r.hset(keys.stats("minute", now), mapping={
        "c:success:f": "2", "c:success:g": "x", "c:nonsense:f": "1", "b:99:f": "1",
        "b:3:f": "2", "t:f": "-4", "weird": "1", b"c:error:\xff": "1", "b:x:f": "1",
    })  # fmt: skip
    stats = client.stats(since=timedelta(minutes=2))
    f = stats.total("f")
    assert f.counts["success"] == 2 and f.executions == 2 and f.duration_sum == 0
    assert stats.total("\\xff").counts["error"] == 1
    assert stats.total().counts["success"] == 2
