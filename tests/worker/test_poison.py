"""Poison messages go to the dead-letter stream with their reason; the worker keeps going."""

from __future__ import annotations

from collections.abc import Callable

import msgpack
import orjson
import pytest
import redis

import jobwire
from jobwire.keys import QueueKeys
from jobwire.wire import Codec, JobEnvelope
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker

T0 = 1_767_225_600_000


def raw_enqueue(url: str, job_id: str, data: bytes) -> None:
    """Put bytes on the queue exactly as a (buggy or hostile) foreign producer would."""
    keys = QueueKeys("jobwire", "default")
    with redis.Redis.from_url(url) as r:
        r.hset(keys.job(job_id), mapping={"data": data, "state": "queued", "tries": 0})
        r.xadd(keys.stream, {"job": job_id})


def envelope(**changes: object) -> dict[str, object]:
    return {
        "v": "1.0",
        "fmt": "json",
        "id": "poison-1",
        "function": "ok_loop",
        "enqueued_ms": T0,
        "args": [1],
        **changes,
    }


POISON: dict[str, tuple[str, Callable[[], bytes]]] = {
    "undecodable": ("undecodable", lambda: b"\x00\x01 not a message"),
    "truncated": ("undecodable", lambda: orjson.dumps(envelope())[:-9]),
    "unknown-major-version": ("unsupported_version", lambda: orjson.dumps(envelope(v="2.0"))),
    "unknown-function": ("unknown_function", lambda: orjson.dumps(envelope(function="nope"))),
    "wrong-types": ("invalid_envelope", lambda: orjson.dumps(envelope(args="not a list"))),
    "pickle-refused": (
        "format_refused",
        lambda: Codec(accept=("pickle",)).encode_job(
            JobEnvelope(
                id="poison-1", function="ok_loop", enqueued_ms=T0, format="pickle", args=(1,)
            )
        ),
    ),
    "oversized": ("oversized", lambda: orjson.dumps(envelope(args=["x" * 5000]))),
    "bad-signature": (
        "bad_signature",
        lambda: Codec(signing_key="someone-else").encode_job(
            JobEnvelope(id="poison-1", function="ok_loop", enqueued_ms=T0, args=(1,))
        ),
    ),
    "msgpack-truncated": ("undecodable", lambda: b"\x85\xa1v\xa31.0"),
    "msgpack-wrong-types": (
        "invalid_envelope",
        lambda: msgpack.packb(envelope(fmt="msgpack", id=7)),
    ),
}


@pytest.mark.parametrize("case", POISON, ids=list(POISON))
def test_poison_is_dead_lettered_and_the_worker_goes_on(
    case: str, start_worker: StartWorker, client: jobwire.Client, redis_url: str
) -> None:
    reason, make = POISON[case]
    options: dict[str, object] = {"max_size": 4096}
    if case == "bad-signature":
        options["signing_key"] = "the-real-key"
    if case == "unknown-function":
        options["unknown_function_grace"] = 0  # no deploy under way: dead-letter at once
    worker = start_worker(**options)
    data = make()
    raw_enqueue(redis_url, "poison-1", data)
    signed = jobwire.Client.from_url(redis_url, signing_key=options.get("signing_key"))
    # a normal job after the poison one still runs
    assert signed.enqueue("ok_loop", 5).result(timeout=30) == 10
    (letter,) = wait_until(client.dead_letters)
    assert letter.reason == reason
    assert letter.data == data  # the raw message is kept, byte for byte
    assert letter.job_id == "poison-1"  # the queue entry named it, even when unreadable
    assert worker.stats.dead_lettered == 1
    if reason not in ("undecodable", "invalid_envelope", "bad_signature", "oversized"):
        # the header was readable: a waiting client learns why instead of hanging
        with pytest.raises(jobwire.JobFailed, match=reason):
            client.job("poison-1").result(timeout=5)
    signed.close()


def test_pickle_is_never_unpickled_by_a_worker_that_did_not_enable_it(
    start_worker: StartWorker, redis_url: str, tmp_path: object
) -> None:
    start_worker()
    producer = jobwire.Client.from_url(redis_url, accept=("json", "msgpack", "pickle"))
    marker = f"{tmp_path}/unpickled"
    job = producer.enqueue("ok_loop", _Trap(marker), _serializer="pickle")
    with pytest.raises(jobwire.JobFailed, match="format_refused"):
        job.result(timeout=30)
    import os

    assert not os.path.exists(marker)
    producer.close()


class _Trap:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        import builtins

        return (builtins.open, (self.path, "w"))  # unpickling would create the file
