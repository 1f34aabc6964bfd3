"""What a consumer reads from Redis is untrusted: malformed entries never break a batch.

Each test writes bad data straight into Redis, as a buggy producer in another language or a
stray command would, and drives the consumer generators (sync and async drivers): a bad
entry comes back alone with its ``problem`` for the worker to dead-letter, and the good
jobs around it run normally. Also: leases under a full Redis, and handing a job back.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

import jobwire
from jobwire import JobSpec, JobStatus
from jobwire.consumer import (
    GRACE_OVER,
    HANDED_BACK,
    LOST,
    NOT_OURS,
    RENEWED,
    SETTLED,
    Consumer,
    _due,
)
from jobwire.keys import ACL_COMMANDS, CONSUMER_GROUP, QueueKeys, acl_rule
from jobwire.models import Delivery
from jobwire.producer import now_ms
from jobwire.protocol import Command, Gen, call, run_sync, translate_error
from jobwire.scripts import SCRIPTS
from tests.helpers.clients import ClientFactory
from tests.helpers.redis_harness import RedisServer
from tests.helpers.support import fetch, finish, index_key, stored_envelope

from .conftest import Drive, Worker

FULL = ["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"]


class Clock:
    """A settable clock in ms, for the consumer's ``clock``."""

    def __init__(self) -> None:
        self.now = now_ms()

    def __call__(self) -> int:
        return self.now


def consumer(
    producer: jobwire.Client, name: str, lease: float = 10.0, clock: Callable[[], int] = now_ms
) -> Consumer:
    return Consumer(producer._core, name, lease=lease, clock=clock)


def keys_of(producer: jobwire.Client) -> QueueKeys:
    return producer._core.keys(None)


def pending(r: redis.Redis, keys: QueueKeys) -> dict[bytes, bytes]:
    """Pending entry id -> consumer."""
    rows = r.xpending_range(keys.stream, CONSUMER_GROUP, "-", "+", 100)
    return {row["message_id"]: row["consumer"] for row in rows}


def seen(batch: list[Delivery]) -> list[tuple[str, str | None, int]]:
    return [(d.job_id, d.problem, d.tries) for d in batch]


# ----------------------------------------------------------------- malformed entries


def write_hostile_batch(producer: jobwire.Client) -> list[tuple[str, str | None, int]]:
    """Good jobs with every kind of malformed entry between them; what a consumer gets."""
    r, keys = producer.redis, keys_of(producer)
    first = producer.enqueue("f", 1)
    assert first is not None
    r.set(keys.job("not-a-hash"), "x")
    r.xadd(keys.stream, {"job": "not-a-hash"})
    bad_tries = producer.enqueue("f", 2)
    assert bad_tries is not None
    r.hset(keys.job(bad_tries.job_id), "tries", "abc")
    r.xadd(keys.stream, {"not-job": "x"})
    raw_id = b"\xff\xfe-id"
    data = stored_envelope(r, keys, first.job_id)
    r.hset(keys.base.encode() + b"job:" + raw_id, mapping={"data": data, "state": "queued",
                                                          "tries": 0})  # fmt: skip
    r.xadd(keys.stream, {"job": raw_id})
    r.xadd(keys.stream, {"job": "expired-long-ago"})  # no hash: dropped without a word
    r.hset(keys.job("no-data"), "state", "queued")
    r.xadd(keys.stream, {"job": "no-data"})
    last = producer.enqueue("f", 3)
    assert last is not None
    return [
        (first.job_id, None, 1),
        ("not-a-hash", "wrong_type", 0),
        (bad_tries.job_id, "bad_field", 0),
        ("", "no_job_id", 0),
        ("\\xff\\xfe-id", "bad_job_id", 1),
        ("no-data", "bad_field", 0),
        (last.job_id, None, 1),
    ]


@pytest.mark.parametrize("via", ["fetch", "read", "reclaim"])
def test_each_malformed_entry_comes_back_alone_and_its_batch_mates_start(
    producer: jobwire.Client, drive: Drive, via: str
) -> None:
    r, keys = producer.redis, keys_of(producer)
    c = consumer(producer, "c", lease=0.05)
    drive(c.ensure_group())
    expected = write_hostile_batch(producer)
    if via == "fetch":
        batch = drive(fetch(c, 20))
    elif via == "read":
        batch = drive(c.read(20, block=1))
    else:  # a worker read them and died before starting them
        r.xreadgroup(CONSUMER_GROUP, "gone", {keys.stream: ">"})
        time.sleep(0.08)
        batch = drive(c.reclaim(20))
    assert seen(batch) == expected
    assert all(isinstance(d.job_id, str) and isinstance(d.entry_id, str) for d in batch)
    assert producer.job(expected[0][0]).status() is JobStatus.IN_PROGRESS
    # the bad ones are leased to this consumer like the good ones; the dropped one is gone
    assert set(pending(r, keys)) == {d.entry_id.encode() for d in batch}
    assert set(pending(r, keys).values()) == {b"c"}
    assert r.xlen(keys.stream) == len(batch)


def test_dead_lettering_problem_deliveries_removes_them_and_leaves_no_bookkeeping(
    producer: jobwire.Client, drive: Drive, redis_url: str
) -> None:
    r, keys = producer.redis, keys_of(producer)
    w = Worker(redis_url)  # for its result envelopes
    c = consumer(producer, "c")
    drive(c.ensure_group())
    write_hostile_batch(producer)
    batch = drive(fetch(c, 20))
    bad = [d for d in batch if d.problem]
    for d in bad:
        # the worker passes a failed result when it can read the job's header
        result = None
        if d.data:
            result = w.result_for(replace(d, tries=1), "error", exc=ValueError("malformed"))
        assert drive(c.dead_letter(reason=d.problem or "", message="malformed", data=d.data,
                                   delivery=d, result=result))  # fmt: skip
    w.close()
    assert set(pending(r, keys)) == {d.entry_id.encode() for d in batch if not d.problem}
    assert r.exists(keys.job("not-a-hash"), keys.job("no-data")) == 0
    assert r.exists(keys.base.encode() + b"job:\xff\xfe-id") == 0  # found by its raw id
    # only real jobs get a result and a done token: stray entries leave nothing behind
    real = {bad[1].job_id.encode(), b"\xff\xfe-id"}
    assert {k[len(keys.base) + 8 :] for k in r.keys(keys.base + "results:*")} == real
    assert {k[len(keys.base) + 5 :] for k in r.keys(keys.base + "done:*")} == real
    reasons = sorted(x.reason for x in producer.dead_letters())
    assert reasons == sorted(d.problem or "" for d in bad)
    assert r.xlen(keys.stream) == 2


def test_a_corrupted_try_count_is_reported_when_a_worker_takes_its_job_back(
    producer: jobwire.Client, drive: Drive
) -> None:
    r, keys = producer.redis, keys_of(producer)
    job = producer.enqueue("f")
    assert job is not None
    c = consumer(producer, "c", lease=0.05)
    drive(c.ensure_group())
    (d,) = drive(fetch(c, 1))
    r.hset(keys.job(job.job_id), "tries", "1.5")
    time.sleep(0.08)  # its lease lapsed: the same process takes it back, without a new try
    (again,) = drive(c.reclaim(10))
    assert (again.entry_id, again.problem, again.tries) == (d.entry_id, "bad_field", 0)


# ----------------------------------------------------------------- deferred set


@pytest.mark.parametrize("via", ["promote", "fetch"])
def test_deferred_members_due_at_no_valid_time_are_dead_lettered(
    producer: jobwire.Client, drive: Drive, via: str
) -> None:
    r, keys = producer.redis, keys_of(producer)
    c = consumer(producer, "c")
    drive(c.ensure_group())
    forever = producer.enqueue("f", "forever", _defer_by=3600)
    later = producer.enqueue("f", "later", _defer_by=3600)
    due = producer.enqueue("f", "due", _defer_by=3600)
    assert forever and later and due
    r.zadd(keys.deferred, {forever.job_id: math.inf, "no-job": 2**60, due.job_id: 1})
    r.set(keys.job("not-a-hash"), "x")
    r.zadd(keys.deferred, {"not-a-hash": 2**55})
    data = stored_envelope(r, keys, forever.job_id)
    if via == "promote":
        moved, next_due = drive(c.promote())
        assert moved == 1
        assert producer.job(due.job_id).status() is JobStatus.QUEUED
    else:
        batch, next_due = drive(c.fetch_and_next_due(10))
        assert seen(batch) == [(due.job_id, None, 1)]
    assert next_due == int(r.zscore(keys.deferred, later.job_id) or 0)
    assert r.zrange(keys.deferred, 0, -1) == [later.job_id.encode()]
    dead = {x.job_id: x for x in producer.dead_letters()}
    assert set(dead) == {forever.job_id, "no-job", "not-a-hash"}
    assert {x.reason for x in dead.values()} == {"bad_due_time"}
    assert dead[forever.job_id].data == data and dead["no-job"].data == b""
    # the job only waited for that time: it is gone with its dead letter
    assert producer.job(forever.job_id).status() is JobStatus.NOT_FOUND
    assert r.exists(keys.job("not-a-hash")) == 0


def test_due_deferred_members_whose_job_key_is_wrong_or_gone_are_removed(
    producer: jobwire.Client, drive: Drive
) -> None:
    r, keys = producer.redis, keys_of(producer)
    c = consumer(producer, "c")
    drive(c.ensure_group())
    job = producer.enqueue("f", _defer_by=3600)
    assert job is not None
    r.set(keys.job("not-a-hash"), "x")
    r.zadd(keys.deferred, {"not-a-hash": 1, "gone": 2, job.job_id: 3})
    batch, next_due = drive(c.fetch_and_next_due(10))
    assert (seen(batch), next_due) == ([(job.job_id, None, 1)], None)
    assert r.zcard(keys.deferred) == 0 and r.exists(keys.job("not-a-hash")) == 0
    ((dead_id, reason),) = [(x.job_id, x.reason) for x in producer.dead_letters()]
    assert (dead_id, reason) == ("not-a-hash", "wrong_type")


def test_a_deferred_set_of_the_wrong_type_does_not_stop_fetching(
    producer: jobwire.Client, drive: Drive
) -> None:
    keys = keys_of(producer)
    producer.redis.set(keys.deferred, "x")
    job = producer.enqueue("f")
    assert job is not None
    c = consumer(producer, "c")
    drive(c.ensure_group())
    assert drive(c.promote()) == (0, None)
    batch, next_due = drive(c.fetch_and_next_due(10))
    assert (seen(batch), next_due) == ([(job.job_id, None, 1)], None)


@pytest.mark.parametrize(
    ("score", "due"),
    [
        (b"1767225600000", 1767225600000), (b"-1", None), (-1, None), (b"inf", 2**53),
        (b"1e300", 2**53), (b"-inf", 0), (b"-5", 0), (b"nan", None), (b"\xff\xfe", None),
        (b"", None), (None, None), (b"12.7", 12), ("42", 42),
    ],
)  # fmt: skip
def test_a_next_due_time_is_read_from_any_reply_without_raising(score: Any, due: Any) -> None:
    assert _due(score) == due


# ----------------------------------------------------------------- leases


def test_renew_tells_a_settled_job_from_a_lost_lease(
    producer: jobwire.Client, drive: Drive
) -> None:
    r, keys = producer.redis, keys_of(producer)
    for i in range(3):
        producer.enqueue("f", i)
    a, b = consumer(producer, "a", lease=0.05), consumer(producer, "b", lease=0.05)
    drive(a.ensure_group())
    taken, running, finished = drive(fetch(a, 3))
    assert drive(a.requeue(finished))  # settled meanwhile (as a finish or a retry would)
    time.sleep(0.08)
    (stolen,) = drive(b.reclaim(1))  # the oldest lapsed entry
    assert stolen.entry_id == taken.entry_id
    r.delete(keys.job(running.job_id))
    r.set(keys.job(running.job_id), "x")  # a job key turned bad does not fail the renewal
    assert drive(a.renew([taken, running, finished])) == [LOST, RENEWED, SETTLED]
    r.delete(keys.stream)  # the queue was wiped: nothing to lose any more
    assert drive(a.renew([running])) == [SETTLED]


# ----------------------------------------------------------------- out of memory


def test_a_full_redis_refuses_enqueues_whole_and_running_jobs_keep_their_lease(
    make_redis_client: ClientFactory, redis_factory: Callable[..., RedisServer]
) -> None:
    server = redis_factory(extra_args=FULL)
    client = make_redis_client(server.url)
    w = Worker(server.url)
    r = w.client.redis
    keys = w.consumer.keys
    client.enqueue("f")
    (d,) = w.take()
    r.setrange("filler", 6_000_000, "x")  # one small command whose value is over maxmemory
    before = {k: r.type(k) for k in r.keys("*")}
    stream = r.xrange(keys.stream)
    with pytest.raises(jobwire.RedisOutOfMemory):
        client.enqueue("f", _job_id="refused")  # the script's first write would be DEL
    with pytest.raises(jobwire.RedisOutOfMemory):
        client.enqueue("f", _queue_name="fresh")  # queue registration and enqueue
    with pytest.raises(jobwire.RedisOutOfMemory):
        client.enqueue_many([JobSpec("f"), JobSpec("f", _defer_by=60)])
    with pytest.raises(jobwire.RedisCommandError):  # what callers that predate it catch
        client.enqueue("f")
    assert {k: r.type(k) for k in r.keys("*")} == before and r.xrange(keys.stream) == stream
    assert w.run(w.consumer.renew([d])) == [RENEWED]  # loaded under OOM, and allowed
    assert client.queue_size() == 0  # read-only scripts still run
    with pytest.raises(jobwire.RedisOutOfMemory):
        w.take()
    r.delete("filler")
    assert client.enqueue("f", _job_id="refused") is not None
    w.close()


def test_out_of_memory_replies_become_redis_out_of_memory() -> None:
    wrapped = redis.exceptions.ResponseError(
        "Error running script (call to f_0123): @user_script:9: "
        "OOM command not allowed when used memory > 'maxmemory'."
    )
    plain = redis.exceptions.OutOfMemoryError("command not allowed when used memory")
    for exc in (wrapped, plain):
        error = translate_error(exc)
        assert isinstance(error, jobwire.RedisOutOfMemory) and error.__cause__ is exc
    other = translate_error(redis.exceptions.ResponseError("WRONGTYPE Operation against a key"))
    assert type(other) is jobwire.RedisCommandError


def test_every_script_declares_what_it_may_do() -> None:
    read_only = {"queue_size", "list_jobs", "job_events"}
    for name, script in SCRIPTS.items():
        first = script.source.splitlines()[0]
        if name == "renew":
            assert first == "#!lua flags=allow-oom"
        elif name in read_only:
            assert first == "#!lua flags=no-writes"
        else:
            assert first == "#!lua", name


def test_the_consumer_moves_need_nothing_beyond_the_documented_acl_rule(
    redis_factory: Callable[..., RedisServer],
) -> None:
    server = redis_factory()
    with redis.Redis(port=server.port) as admin:
        admin.execute_command("ACL", "SETUSER", "app", "on", ">s3cret", *acl_rule().split())
    with jobwire.Client.from_url(f"redis://app:s3cret@127.0.0.1:{server.port}/0") as app:
        r, keys = app.redis, keys_of(app)
        c = consumer(app, "c", lease=0.05)

        def run(gen: Gen[Any]) -> Any:
            return run_sync(r, gen)

        run(c.ensure_group())
        write_hostile_batch(app)
        app.enqueue("f", _defer_by=3600)
        r.zadd(keys.deferred, {"forever": math.inf})
        batch = run(fetch(c, 20))
        assert run(c.renew(batch))
        run(c.hand_back(batch[0], 1, 1, 60))
        for d in batch[1:]:
            run(c.dead_letter(reason="x", message="x", data=d.data, delivery=d))
        run(c.promote())
        run(c.reclaim(10))
        assert run(c.read(10, block=0.01)) == []
        run(call(Command(("INFO", "memory"))))  # what the worker reads too
        run(call(Command(("TIME",))))
    with redis.Redis(port=server.port) as admin:
        assert admin.execute_command("ACL", "LOG") == []


def test_the_readme_counts_the_acl_commands() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"{len(ACL_COMMANDS)} commands of `jobwire.keys.ACL_COMMANDS`" in readme
    assert {"info", "time"} <= set(ACL_COMMANDS)


# ----------------------------------------------------------------- clock and hand-back


def test_the_consumer_times_what_it_writes_with_its_clock(
    producer: jobwire.Client, drive: Drive
) -> None:
    job = producer.enqueue("f", _defer_by=1800)
    assert job is not None
    clock = Clock()
    clock.now += 3_600_000  # an hour ahead: the deferred job is due by this clock
    c = consumer(producer, "c", clock=clock)
    drive(c.ensure_group())
    (d,) = drive(fetch(c, 1))
    assert d.job_id == job.job_id
    assert producer.job(job.job_id).info().start_time.timestamp() * 1000 == clock.now


def test_a_handed_back_job_waits_longer_each_time_and_no_try_is_counted(
    producer: jobwire.Client, drive: Drive
) -> None:
    r, keys = producer.redis, keys_of(producer)
    job = producer.enqueue("f")
    assert job is not None
    clock = Clock()
    c = consumer(producer, "old-worker", clock=clock)
    drive(c.ensure_group())
    for delay in (1000, 2000, 4000, 5000, 5000):  # doubling up to max_delay
        (d,) = drive(fetch(c, 1))
        assert d.tries == 1
        assert drive(c.hand_back(d, base_delay=1, max_delay=5, grace=60)) == HANDED_BACK
        assert r.zscore(keys.deferred, job.job_id) == clock.now + delay
        info = producer.job(job.job_id).info()
        assert (info.status, info.job_try, info.worker) == (JobStatus.DEFERRED, 1, None)
        assert pending(r, keys) == {} and r.xlen(keys.stream) == 0
        clock.now += delay  # due now: the next fetch promotes it
    assert r.hget(keys.job(job.job_id), "handbacks") == b"5"
    assert r.xlen(keys.wake) >= 1  # a blocked worker is woken for it


def test_a_job_handed_back_past_its_grace_period_is_left_to_dead_letter(
    producer: jobwire.Client, drive: Drive
) -> None:
    r, keys = producer.redis, keys_of(producer)
    job = producer.enqueue("f")
    assert job is not None
    clock = Clock()
    c = consumer(producer, "old-worker", clock=clock)
    drive(c.ensure_group())
    (d,) = drive(fetch(c, 1))
    assert drive(c.hand_back(d, base_delay=1, max_delay=1, grace=10)) == HANDED_BACK
    clock.now += 10_000  # the grace is measured from the first hand-back
    (d,) = drive(fetch(c, 1))
    assert drive(c.hand_back(d, base_delay=1, max_delay=1, grace=10)) == GRACE_OVER
    assert pending(r, keys) == {d.entry_id.encode(): b"old-worker"}
    assert producer.job(job.job_id).status() is JobStatus.IN_PROGRESS
    assert drive(c.dead_letter(reason="unknown_function", message="no such function",
                               data=d.data, delivery=d))  # fmt: skip
    assert pending(r, keys) == {} and producer.job(job.job_id).status() is JobStatus.NOT_FOUND
    assert [x.reason for x in producer.dead_letters()] == ["unknown_function"]


def test_handing_back_a_delivery_that_is_no_longer_ours_does_nothing(
    producer: jobwire.Client, drive: Drive
) -> None:
    r, keys = producer.redis, keys_of(producer)
    job = producer.enqueue("f")
    assert job is not None
    a, b = consumer(producer, "a", lease=0.05), consumer(producer, "b", lease=0.05)
    drive(a.ensure_group())
    (d,) = drive(fetch(a, 1))
    assert drive(a.hand_back(d, 1, 1, 60)) == HANDED_BACK
    assert drive(a.hand_back(d, 1, 1, 60)) == NOT_OURS  # resent: settled already
    assert r.hget(keys.job(job.job_id), "handbacks") == b"1"
    r.zadd(keys.deferred, {job.job_id: 1})
    (d,) = drive(fetch(a, 1))
    time.sleep(0.08)
    (taken,) = drive(b.reclaim(1))  # a's lease ran out: b runs it now
    assert drive(a.hand_back(d, 1, 1, 60)) == NOT_OURS
    assert pending(r, keys) == {taken.entry_id.encode(): b"b"}
    assert producer.job(job.job_id).info().worker == "b"
    r.hset(keys.job(job.job_id), "entry", "0-1")  # pending for b, but the job moved on
    assert drive(b.hand_back(taken, 1, 1, 60)) == NOT_OURS
    assert pending(r, keys) == {}


# ----------------------------------------------------------------- the index (SPEC 12.1)


def test_an_index_bucket_of_the_wrong_type_holds_nothing_and_its_jobs_get_a_hash(
    producer: jobwire.Client, drive: Drive
) -> None:
    r, keys = producer.redis, keys_of(producer)
    r.set(index_key(keys, "bucketed"), "not a hash")
    assert index_key(keys, "elsewhere") != index_key(keys, "bucketed")
    job = producer.enqueue("f", 1, _job_id="bucketed")
    other = producer.enqueue("f", 2, _job_id="elsewhere")
    assert job is not None and other is not None
    assert r.exists(keys.job("bucketed")) and not r.exists(keys.job("elsewhere"))
    # the broken bucket is read as empty, by the clients as by the scripts
    assert job.status() is JobStatus.QUEUED and other.status() is JobStatus.QUEUED
    assert job.info().args == (1,) and other.info().args == (2,)
    assert [j.job_id for j in producer.queued_jobs()] == ["bucketed", "elsewhere"]
    assert producer.enqueue("f", _job_id="bucketed") is None  # taken
    c = consumer(producer, "c")
    drive(c.ensure_group())
    assert seen(drive(fetch(c, 10))) == [("bucketed", None, 1), ("elsewhere", None, 1)]
    assert job.status() is JobStatus.IN_PROGRESS and other.status() is JobStatus.IN_PROGRESS


def test_an_index_field_naming_no_entry_of_the_jobs_takes_the_jobs_own_entry(
    producer: jobwire.Client, drive: Drive
) -> None:
    r, keys = producer.redis, keys_of(producer)
    first = producer.enqueue("f", 1)
    odd = producer.enqueue("f", 2, _job_id="misindexed")
    last = producer.enqueue("f", 3)
    assert first and odd and last
    r.hset(index_key(keys, "misindexed"), "misindexed", "1-1  x")  # no such entry
    c = consumer(producer, "c")
    drive(c.ensure_group())
    batch = drive(fetch(c, 10))
    assert seen(batch) == [(first.job_id, None, 1), ("misindexed", None, 1),
                           (last.job_id, None, 1)]  # fmt: skip
    assert not r.hexists(index_key(keys, "misindexed"), "misindexed")
    assert odd.status() is JobStatus.IN_PROGRESS


def test_an_entry_left_from_an_earlier_job_of_the_same_id_is_dropped_not_run(
    producer: jobwire.Client, drive: Drive
) -> None:
    """A job that expired (or was aborted, written with plain commands) leaves its entry: a
    new job of that id is the one that runs, once, with its own arguments."""
    r, keys = producer.redis, keys_of(producer)
    assert producer.enqueue("f", "old", _job_id="report-7", _expires=0.05)
    r.xadd(keys.stream, {"job": "stray"})  # a foreign stray entry, then its id's real job
    time.sleep(0.1)
    new = producer.enqueue("f", "new", _job_id="report-7")
    stray = producer.enqueue("f", "real", _job_id="stray")
    assert new is not None and stray is not None
    assert new.status() is JobStatus.QUEUED and new.info().args == ("new",)
    c = consumer(producer, "c")
    drive(c.ensure_group())
    batch = drive(fetch(c, 10))
    assert seen(batch) == [("report-7", None, 1), ("stray", None, 1)]
    assert [json.loads(d.data)["args"] for d in batch] == [["new"], ["real"]]
    assert r.xlen(keys.stream) == 2  # the two stale entries are gone


def test_an_index_field_naming_another_jobs_entry_never_touches_that_job(
    producer: jobwire.Client, drive: Drive
) -> None:
    r, keys = producer.redis, keys_of(producer)
    other = producer.enqueue("f", "mine", _job_id="other")
    assert other is not None
    entry = r.hget(index_key(keys, "other"), "other")
    r.hset(index_key(keys, "ghost"), "ghost", entry)
    ghost = producer.job("ghost")
    assert ghost.info() is None  # not the other job's
    assert ghost.abort(timeout=1) is False
    assert producer.enqueue("f", "its own", _job_id="ghost") is not None  # not taken
    assert ghost.info().args == ("its own",)
    c = consumer(producer, "c")
    drive(c.ensure_group())
    batch = drive(fetch(c, 10))
    assert seen(batch) == [("other", None, 1), ("ghost", None, 1)]
    assert [json.loads(d.data)["args"] for d in batch] == [["mine"], ["its own"]]


def test_a_job_id_that_is_not_unicode_text_is_a_typed_error(producer: jobwire.Client) -> None:
    with pytest.raises(jobwire.InvalidArgument, match="valid Unicode text"):
        producer.job("bad-\udcff")
    with pytest.raises(jobwire.InvalidArgument, match="valid Unicode text"):
        producer.enqueue("f", _job_id="bad-\udcff")


def test_a_job_aborted_while_in_the_index_leaves_nothing_and_its_entry_is_dropped(
    producer: jobwire.Client, drive: Drive
) -> None:
    r, keys = producer.redis, keys_of(producer)
    job = producer.enqueue("f", 1, _job_id="short-lived")
    kept = producer.enqueue("f", 2)
    assert job is not None and kept is not None
    assert not r.exists(keys.job("short-lived"))
    assert job.abort(timeout=1)
    assert job.status() is JobStatus.COMPLETE and job.result_info().outcome == "aborted"
    assert not r.hexists(index_key(keys, "short-lived"), "short-lived")
    c = consumer(producer, "c")
    drive(c.ensure_group())
    assert seen(drive(fetch(c, 10))) == [(kept.job_id, None, 1)]
    assert job.retry() is not None  # its envelope was kept, from the entry
    assert job.info().args == (1,)


@pytest.mark.parametrize("left", ["wrong type", "tokens left", "none"])
def test_a_finished_job_has_exactly_one_done_token_whatever_its_key_held(
    producer: jobwire.Client, drive: Drive, redis_url: str, left: str
) -> None:
    r, keys = producer.redis, keys_of(producer)
    job = producer.enqueue("f")
    assert job is not None
    done = keys.base + "done:" + job.job_id
    if left == "wrong type":
        r.set(done, "x")
    elif left == "tokens left":  # e.g. an earlier run of the same id, or a hand-made list
        r.rpush(done, "1", "1", "junk")
    c = consumer(producer, "c")
    drive(c.ensure_group())
    (d,) = drive(fetch(c, 10))
    w = Worker(redis_url)
    drive(finish(c, d, w.result_for(d, "success", value=1), 60))
    w.close()
    assert r.lrange(done, 0, -1) == [b"1"]
    assert 0 < r.pttl(done) <= 60_000
    assert job.result(timeout=5) == 1


def test_a_jobs_result_history_keeps_the_latest_results_up_to_its_limit(
    producer: jobwire.Client, drive: Drive, redis_url: str
) -> None:
    from jobwire.defaults import HISTORY

    r, keys = producer.redis, keys_of(producer)
    c = consumer(producer, "c")
    drive(c.ensure_group())
    w = Worker(redis_url)
    for i in range(HISTORY + 3):  # the same id run again and again
        assert producer.enqueue("f", _job_id="again") is not None
        (d,) = drive(fetch(c, 10))
        result = w.result_for(d, "success", value=i)
        drive(finish(c, d, result, 60))
        drive(finish(c, d, result, 60))  # a resent call (its reply lost) adds nothing
    w.close()
    history = r.lrange(keys.base + "results:again", 0, -1)
    assert len(history) == HISTORY
    values = [json.loads(x)["value"] for x in history]
    assert values == list(range(HISTORY + 2, 2, -1))  # newest first
