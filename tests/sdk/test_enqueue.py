"""Enqueueing, with every option, proven for both clients."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import jobwire
from jobwire import JobSpec, JobStatus
from jobwire.protocol import Pipeline, call, run_sync
from jobwire.wire import detect_framing

from .conftest import AnyWorker


def send_email(ctx: Any, to: str) -> str:
    return to


def test_enqueue_returns_a_handle_and_stores_the_job(client: Any) -> None:
    job = client.enqueue("send_email", "a@example.com", subject="hi")
    assert job is not None and len(job.job_id) == 32
    assert job.status() is JobStatus.QUEUED
    info = job.info()
    assert (info.function, info.args, info.kwargs) == (
        "send_email",
        ("a@example.com",),
        {"subject": "hi"},
    )
    assert info.queue_name == "default" and info.job_try == 1 and info.format == "json"
    assert abs(info.enqueue_time - datetime.now(timezone.utc)) < timedelta(seconds=30)
    assert client.queue_size() == 1


def test_function_may_be_a_callable(client: Any) -> None:
    job = client.enqueue(send_email, "x")
    assert job.info().function == "send_email"


def test_job_id_option_and_uniqueness(client: Any, worker: AnyWorker) -> None:
    first = client.enqueue("f", _job_id="order-42")
    assert first.job_id == "order-42"
    assert client.enqueue("f", _job_id="order-42") is None  # taken while queued
    assert client.job("order-42").info().function == "f"  # the documented way to get it
    (d,) = worker.take()
    assert client.enqueue("f", _job_id="order-42") is None  # taken while running
    worker.succeed(d, 1)
    again = client.enqueue("f", _job_id="order-42")  # free once finished (default policy)
    assert again is not None and again.status() is JobStatus.QUEUED


def test_ids_can_stay_taken_while_the_result_is_kept(make_client: Any, worker: AnyWorker) -> None:
    client = make_client(unique_while_result_kept=True)
    client.enqueue("f", _job_id="once")
    (d,) = worker.take()
    worker.succeed(d, 1)
    assert client.enqueue("f", _job_id="once") is None
    worker.forget_result("once")  # its keep time ran out
    assert client.enqueue("f", _job_id="once") is not None


def test_a_retried_enqueue_of_the_same_bytes_is_not_reported_as_taken(redis_url: str) -> None:
    # a reply lost to a connection error makes redis-py send the script again
    with jobwire.Client.from_url(redis_url) as client:
        _, _, command = client._core.build(JobSpec("f", 1, _job_id="same"), 1)
        assert run_sync(client.redis, call(command)) == 1
        assert run_sync(client.redis, call(command)) == 3  # same call: success, not "taken"
        # a *different* call with byte-identical data (same id, args and millisecond) is a
        # duplicate and must be refused
        _, _, other = client._core.build(JobSpec("f", 1, _job_id="same"), 1)
        token = 3 + int(command.args[2]) + 5  # EVALSHA sha numkeys KEYS... then ARGV[6]
        differ = [
            i for i, (a, b) in enumerate(zip(other.args, command.args, strict=True)) if a != b
        ]
        assert differ == [token]  # keys, id and envelope bytes all equal: only the token differs
        assert run_sync(client.redis, call(other)) == 0
        assert client.queue_size() == 1


@pytest.mark.parametrize("defer", [None, 60])
def test_a_resent_enqueue_of_a_generated_id_is_known_by_its_envelope(
    redis_url: str, redis_worker: Any, defer: int | None
) -> None:
    # an id made for the call needs no token: no other call can name it (SPEC 12.3)
    with jobwire.Client.from_url(redis_url) as client:
        (job_id, _), _, command = client._core.build(JobSpec("f", 1, _defer_by=defer), 1)
        token = 3 + int(command.args[2]) + 5
        assert command.args[token] == ""
        assert run_sync(client.redis, call(command)) == (1 if defer is None else 2)
        assert run_sync(client.redis, call(command)) == 3  # resent while it waits
        if defer is None:
            (d,) = redis_worker.take()
            assert d.job_id == job_id
            assert run_sync(client.redis, call(command)) == 3  # resent after it started
        # the same id with another envelope is another call: the id is taken
        args = list(command.args)
        args[token - 4] = args[token - 4].replace(b'"args":[1]', b'"args":[2]')
        assert args[token - 4] != command.args[token - 4]
        assert run_sync(client.redis, call(replace(command, args=tuple(args)))) == 0
        assert client.queue_size() == (0 if defer is None else 1)  # once, running or waiting
        assert client.job(job_id).info().args == (1,)


def test_queue_name_option(client: Any) -> None:
    job = client.enqueue("f", _queue_name="emails")
    assert job.queue_name == "emails"
    assert client.queue_size("emails") == 1 and client.queue_size() == 0
    assert client.job(job.job_id, "emails").status() is JobStatus.QUEUED
    assert client.job(job.job_id).status() is JobStatus.NOT_FOUND  # other queue
    assert "emails" in client.queues()


def test_defer_by_and_defer_until(client: Any, worker: AnyWorker) -> None:
    by = client.enqueue("f", _defer_by=timedelta(seconds=60))
    until = client.enqueue("f", _defer_until=datetime.now(timezone.utc) + timedelta(hours=1))
    soon = client.enqueue("f", _defer_by=0.2)
    for job in (by, until, soon):
        assert job.status() is JobStatus.DEFERRED
    assert until.info().defer_until > datetime.now(timezone.utc) + timedelta(minutes=59)
    assert worker.take() == []  # nothing is ready
    assert client.queue_size() == 3
    time.sleep(0.3)
    worker.promote()
    assert soon.status() is JobStatus.QUEUED and by.status() is JobStatus.DEFERRED
    assert [d.job_id for d in worker.take()] == [soon.job_id]


def test_defer_in_the_past_means_now(client: Any) -> None:
    job = client.enqueue("f", _defer_until=datetime.now(timezone.utc) - timedelta(minutes=1))
    assert job.status() is JobStatus.QUEUED


def test_defer_options_are_exclusive(client: Any) -> None:
    with pytest.raises(jobwire.InvalidArgument):
        client.enqueue("f", _defer_by=1, _defer_until=datetime.now(timezone.utc))
    assert client.queue_size() == 0


def test_expired_jobs_are_never_delivered(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f", _expires=0.3)
    kept = client.enqueue("f", _expires=timedelta(hours=1))
    assert job.info().expires is not None
    time.sleep(0.5)
    assert job.status() is JobStatus.NOT_FOUND
    assert [d.job_id for d in worker.take()] == [kept.job_id]


def test_expiry_must_be_in_the_future_and_after_the_deferral(client: Any) -> None:
    with pytest.raises(jobwire.InvalidArgument):
        client.enqueue("f", _expires=datetime.now(timezone.utc) - timedelta(seconds=1))
    with pytest.raises(jobwire.InvalidArgument, match="expire before"):
        client.enqueue(
            "f", _defer_by=60, _expires=datetime.now(timezone.utc) + timedelta(seconds=30)
        )
    # a duration counts from the deferred start, as in arq
    job = client.enqueue("f", _defer_by=60, _expires=30)
    assert job.info().expires - job.info().defer_until == timedelta(seconds=30)


def test_job_try_option(client: Any, worker: AnyWorker) -> None:
    job = client.enqueue("f", _job_try=3)
    assert job.info().job_try == 3
    (d,) = worker.take()
    assert job.info().job_try == 3
    worker.succeed(d)
    assert job.result_info().job_try == 3


@pytest.mark.parametrize("fmt", ["json", "msgpack", "pickle"])
def test_serializer_option_per_job(make_client: Any, worker: AnyWorker, fmt: str) -> None:
    client = make_client(accept=("json", "msgpack", "pickle"))
    value = {1, 2} if fmt == "pickle" else [1, 2]
    job = client.enqueue("f", value, _serializer=fmt)
    info = job.info()
    assert info.format == fmt and info.args == (value,)
    (d,) = worker.take()
    assert detect_framing(d.data) == ("json" if fmt == "json" else "msgpack")
    assert worker.decode(d.data).format == fmt


def test_default_serializer_option(make_client: Any) -> None:
    client = make_client(serializer="msgpack")
    assert client.enqueue("f", b"raw").info().format == "msgpack"


def test_pickle_jobs_are_listed_without_unpickling(make_client: Any) -> None:
    producer = make_client(accept=("json", "msgpack", "pickle"))
    job = producer.enqueue("f", {1}, _serializer="pickle")
    plain = make_client()  # does not accept pickle
    info = plain.job(job.job_id).info()
    assert info.function == "f" and info.format == "pickle"
    assert info.args is None and info.kwargs is None


def test_headers_option(client: Any) -> None:
    headers = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    assert client.enqueue("f", _headers=headers).info().headers == headers


def test_bad_arguments_raise_typed_errors_and_enqueue_nothing(client: Any) -> None:
    with pytest.raises(jobwire.UnsupportedValue, match=r"args\[0\]"):
        client.enqueue("f", object())
    with pytest.raises(jobwire.UnsupportedValue, match="kwargs"):
        client.enqueue("f", blob=b"x")  # bytes need msgpack or pickle
    with pytest.raises(jobwire.PayloadTooLarge):
        client.enqueue("f", "x" * (1024 * 1024 + 1))
    assert client.queue_size() == 0


def test_enqueue_many(client: Any) -> None:
    jobs = client.enqueue_many(
        [JobSpec("f", i, _job_id=f"m{i}") for i in range(50)] + [JobSpec("f", _job_id="m3"), "g"]
    )
    assert [j.job_id for j in jobs[:50]] == [f"m{i}" for i in range(50)]
    assert jobs[50] is None  # id taken within the same batch
    assert jobs[51].info().function == "g"
    assert client.queue_size() == 51
    assert client.enqueue_many([]) == []


def test_enqueue_many_is_one_round_trip() -> None:
    # the protocol core is sans-IO: drive it by hand and count what it asks Redis for
    core = jobwire.Client.from_url("redis://127.0.0.1:1")._core
    gen = core.enqueue_many([JobSpec("f", i) for i in range(100)])
    op = next(gen)
    assert isinstance(op, Pipeline) and len(op.commands) == 101  # + SADD of the queue name
    with pytest.raises(StopIteration) as done:
        gen.send([1] * 101)
    assert len(done.value.value) == 100
