"""Hostile entries written straight into Redis (following SPEC section 12) beside normal jobs.

Each malformed entry is dead-lettered alone with its reason; every normal job of the same
batch runs exactly once; no loop of the worker fails or restarts; a flood of bad entries
leaves only short-lived bookkeeping and a rate-limited log.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis

import jobwire
from jobwire.keys import QueueKeys
from jobwire.worker import func
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker

KEYS = QueueKeys("jobwire", "default")
T0 = 1_767_225_600_000
RUNS: Counter[str] = Counter()


async def count(ctx: dict[str, Any]) -> str:
    RUNS[ctx["job_id"]] += 1
    return ctx["job_id"]


def envelope(job_id: str, **changes: Any) -> bytes:
    fields = {"v": "1.0", "fmt": "json", "id": job_id, "function": "count", "enqueued_ms": T0}
    return orjson.dumps({**fields, **changes})


def queued(r: redis.Redis, job_id: str | bytes, fields: dict[str, Any]) -> None:
    """A job hash and its stream entry, as SPEC 12.3 says a producer writes them."""
    key = KEYS.base.encode() + b"job:" + (job_id.encode() if isinstance(job_id, str) else job_id)
    r.hset(key, mapping=fields)
    r.xadd(KEYS.stream, {"job": job_id})


def ok_fields(job_id: str, **changes: Any) -> dict[str, Any]:
    return {"data": envelope(job_id, **changes), "state": "queued", "tries": 0}


# Each writer puts one malformed entry into Redis; the value is the dead-letter reason.
HOSTILE: dict[str, tuple[str, Callable[[redis.Redis], None]]] = {
    "job id not UTF-8": (
        "bad_job_id",
        lambda r: queued(r, b"\xff\xfe-bad", ok_fields("x")),
    ),
    "entry without a job field": (
        "no_job_id",
        lambda r: r.xadd(KEYS.stream, {"something": "else"}),
    ),
    "job key of the wrong type": (
        "wrong_type",
        lambda r: (
            r.set(KEYS.job("wrongtype"), "a string"),
            r.xadd(KEYS.stream, {"job": "wrongtype"}),
        ),
    ),
    "tries not a number": (
        "bad_field",
        lambda r: queued(r, "badtries", {**ok_fields("badtries"), "tries": "abc"}),
    ),
    "try beyond range": (
        "invalid_envelope",
        lambda r: queued(r, "hugetry", ok_fields("hugetry", **{"try": 2**64 - 1})),
    ),
    "enqueued_ms beyond range": (
        "invalid_envelope",
        lambda r: queued(r, "hugetime", ok_fields("hugetime", enqueued_ms=2**63)),
    ),
    "envelope id not its key's": (
        "id_mismatch",
        lambda r: queued(r, "mismatch", {**ok_fields("mismatch"), "data": envelope("other")}),
    ),
    "not JSON at all": (
        "undecodable",
        lambda r: queued(r, "garbage", {**ok_fields("garbage"), "data": b"\x00\xff garbage"}),
    ),
    "deferred due at +inf": (
        "bad_due_time",
        lambda r: (
            r.hset(KEYS.job("infdue"), mapping={**ok_fields("infdue"), "state": "deferred"}),
            r.zadd(KEYS.deferred, {"infdue": float("inf")}),
        ),
    ),
    "deferred due in the year 30000": (
        "bad_due_time",
        lambda r: (
            r.hset(KEYS.job("fardue"), mapping={**ok_fields("fardue"), "state": "deferred"}),
            r.zadd(KEYS.deferred, {"fardue": 1e18}),
        ),
    ),
    "deferred member whose key has the wrong type": (
        "wrong_type",
        lambda r: (r.rpush(KEYS.job("listdue"), "x"), r.zadd(KEYS.deferred, {"listdue": T0})),
    ),
}


def _loops_ok(worker: Any) -> None:
    for name, loop in worker.supervisor.records().items():
        assert loop["state"] in ("running", "waiting"), (name, loop)
        assert loop["restarts"] == 0, (name, loop)


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_hostile_entry_is_dead_lettered_alone_and_its_batch_mates_run_once(
    case: str, start_worker: StartWorker, redis_url: str, client: jobwire.Client
) -> None:
    reason, write = HOSTILE[case]
    RUNS.clear()
    with redis.Redis.from_url(redis_url) as r:
        r.xgroup_create(KEYS.stream, "workers", "0", mkstream=True)
        normal = [f"n{i}" for i in range(6)]
        for job_id in normal[:3]:
            queued(r, job_id, ok_fields(job_id))
        write(r)  # in the middle of one batch
        for job_id in normal[3:]:
            queued(r, job_id, ok_fields(job_id))
        worker = start_worker([func(count)], max_jobs=20)
        assert wait_until(lambda: all(RUNS[j] for j in normal) and client.dead_letters(), 15)
        (letter,) = client.dead_letters()
        assert letter.reason == reason, letter
        # every normal job ran once; nothing is left pending or half-done
        assert all(RUNS[j] == 1 for j in normal), RUNS
        for job_id in normal:
            assert client.job(job_id).result(timeout=5) == job_id
        assert wait_until(lambda: r.xpending(KEYS.stream, "workers")["pending"] == 0)
        assert r.zcard(KEYS.deferred) == 0
    _loops_ok(worker)
    # and the worker still takes new work
    assert client.enqueue("count", _job_id="after").result(timeout=10) == "after"


def test_every_hostile_kind_at_once(
    start_worker: StartWorker, redis_url: str, client: jobwire.Client
) -> None:
    RUNS.clear()
    with redis.Redis.from_url(redis_url) as r:
        r.xgroup_create(KEYS.stream, "workers", "0", mkstream=True)
        for i, (_, write) in enumerate(HOSTILE.values()):
            queued(r, f"n{i}", ok_fields(f"n{i}"))
            write(r)
    start_worker([func(count)], max_jobs=50)
    normal = [f"n{i}" for i in range(len(HOSTILE))]
    assert wait_until(lambda: len(client.dead_letters(limit=100)) == len(HOSTILE), 15)
    assert Counter(d.reason for d in client.dead_letters(limit=100)) == Counter(
        reason for reason, _ in HOSTILE.values()
    )
    assert wait_until(lambda: all(RUNS[j] == 1 for j in normal))


@pytest.mark.slow
def test_a_flood_of_bad_entries_leaves_bounded_keys_and_a_quiet_log(
    start_worker: StartWorker,
    redis_url: str,
    client: jobwire.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    flood = int(os.environ.get("FLOOD", "12000"))  # past the 10,000 dead-letter cap
    with redis.Redis.from_url(redis_url) as r:
        r.xgroup_create(KEYS.stream, "workers", "0", mkstream=True)
        pipe = r.pipeline(transaction=False)
        for i in range(flood):
            pipe.hset(KEYS.job(f"bad{i}"), mapping={"data": b"\x00 junk", "state": "queued"})
            pipe.xadd(KEYS.stream, {"job": f"bad{i}"})
            if i % 5000 == 4999:
                pipe.execute()
        pipe.execute()
        caplog.set_level(logging.WARNING, logger="jobwire")
        worker = start_worker([func(count)], max_jobs=100, health_check_interval=1)
        assert wait_until(lambda: worker.stats.dead_lettered == flood, 120, 0.2)
        assert client.enqueue("count", _job_id="after").result(timeout=10) == "after"
        # the dead-letter stream stays capped; per-message keys are gone or about to expire
        assert r.xlen(KEYS.dead) == min(flood, 10_000)
        assert not list(r.scan_iter(KEYS.base + "job:bad*", count=10_000))
        leftovers = [k for k in r.scan_iter(KEYS.base + "*", count=10_000) if b":bad" in k]
        ttls = [r.pttl(k) for k in leftovers]
        assert all(0 < ttl <= 60_000 for ttl in ttls), sorted(ttls)[:5]
        print(
            f"\nflood of {flood}: {len(leftovers)} per-message keys left, all expiring within 60 s"
        )
    lines = [rec for rec in caplog.records if "dead-lettering" in rec.getMessage()]
    assert 0 < len(lines) < 50, len(lines)  # rate-limited, with counts
    # the suppressed ones are counted in the log once the flood is over
    assert wait_until(lambda: any("more like" in rec.getMessage() for rec in caplog.records), 15)
    _loops_ok(worker)
