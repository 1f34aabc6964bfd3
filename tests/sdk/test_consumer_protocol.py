"""The consumer side of the protocol core (what the worker drives), over both drivers."""

from __future__ import annotations

import time

import pytest

import jobwire
from jobwire.consumer import ABORT_REQUESTED, LOST, RENEWED, Consumer
from tests.helpers.support import fetch

from .conftest import Drive, Worker


def consumer(producer: jobwire.Client, name: str, lease: float = 10.0) -> Consumer:
    return Consumer(producer._core, name, lease=lease)


def test_fetch_takes_a_batch_in_order(producer: jobwire.Client, drive: Drive) -> None:
    jobs = [producer.enqueue("f", i) for i in range(7)]
    c = consumer(producer, "c1")
    drive(c.ensure_group())
    drive(c.ensure_group())  # idempotent
    batch = drive(fetch(c, 5))
    assert [d.job_id for d in batch] == [j.job_id for j in jobs[:5]]
    assert all(d.tries == 1 for d in batch)
    assert [d.job_id for d in drive(fetch(c, 5))] == [j.job_id for j in jobs[5:]]
    assert drive(fetch(c, 5)) == []


def test_blocking_read_waits_for_a_job(producer: jobwire.Client, drive: Drive) -> None:
    c = consumer(producer, "c1")
    drive(c.ensure_group())
    started = time.monotonic()
    assert drive(c.read(10, block=0.3)) == []
    assert time.monotonic() - started >= 0.25
    job = producer.enqueue("f")
    (d,) = drive(c.read(10, block=5))
    assert d.job_id == job.job_id and job.status() is jobwire.JobStatus.IN_PROGRESS


def test_a_worker_given_jobs_reads_and_starts_in_one_round_trip(
    producer: jobwire.Client, drive: Drive
) -> None:
    # once the consumer was given an entry, read pipelines XREADGROUP with start_delivered
    c = consumer(producer, "c1")
    drive(c.ensure_group())
    first = producer.enqueue("f")
    (d0,) = drive(fetch(c, 5))
    assert d0.job_id == first.job_id and c.given is not None
    assert drive(c.read(10, block=0.1)) == []  # a time-out starts nothing
    jobs = [producer.enqueue("f", i) for i in range(3)]
    got = drive(c.read(10, block=5))
    assert [d.job_id for d in got] == [j.job_id for j in jobs]
    assert all(d.tries == 1 and d.problem is None for d in got)
    assert all(j.status() is jobwire.JobStatus.IN_PROGRESS for j in jobs)
    assert drive(c.read(10, block=0.1)) == []  # nothing is started twice
    # a deferred job's wake marker: settled by the script, nothing started, then promoted
    producer.enqueue("f", _defer_by=0.2)
    assert drive(c.read(10, block=5)) == []
    assert producer.redis.xlen(c.keys.wake) == 0


def test_a_pipelined_read_leaves_a_job_its_session_reclaimed(
    producer: jobwire.Client, drive: Drive
) -> None:
    a, b = consumer(producer, "a", lease=0.3), consumer(producer, "b", lease=0.3)
    drive(a.ensure_group())
    producer.enqueue("f")
    drive(fetch(b, 1))  # b is given the first entry
    job = producer.enqueue("f")
    (taken,) = drive(fetch(a, 1))  # a takes the second job, then dies
    assert taken.job_id == job.job_id
    time.sleep(0.4)
    # b's session starts it (an id above b's floor), and takes back its own lapsed first job;
    # in a worker, that reclaim can run while the fetch loop's read is already sent with the
    # floor it had: keep that floor
    floor = b.given
    again = {d.job_id: d for d in drive(b.reclaim(10))}
    b.given = floor
    assert again[job.job_id].tries == 2 and len(again) == 2
    assert drive(b.read(10, block=0.1)) == []  # the read does not hand it out a second time
    assert producer.redis.hget(f"{b.keys.base}job:{job.job_id}", "tries") == b"2"


def test_an_earlier_deferred_job_wakes_a_blocked_reader(
    producer: jobwire.Client, drive: Drive
) -> None:
    c = consumer(producer, "c1")
    drive(c.ensure_group())
    producer.enqueue("f", _defer_by=3600)
    job = producer.enqueue("f", _defer_by=0.2)  # earlier than anything deferred: a wake entry
    started = time.monotonic()
    assert drive(c.read(10, block=5)) == []  # woken by the marker, not by the timeout
    assert time.monotonic() - started < 4
    moved, next_due = drive(c.promote())
    assert next_due is not None
    time.sleep(0.25)
    moved, _ = drive(c.promote())
    assert moved == 1
    (d,) = drive(c.read(10, block=5))
    assert d.job_id == job.job_id


def test_lost_lease_is_reclaimed_with_the_next_try(producer: jobwire.Client, drive: Drive) -> None:
    job = producer.enqueue("f")
    a, b = consumer(producer, "a", lease=0.3), consumer(producer, "b", lease=0.3)
    drive(a.ensure_group())
    (d,) = drive(fetch(a, 1))
    assert drive(b.reclaim(10)) == []  # lease still valid
    time.sleep(0.5)  # worker a "died": no renewal
    (again,) = drive(b.reclaim(10))
    assert again.job_id == job.job_id and again.tries == 2
    assert job.info().worker == "b" and job.info().job_try == 2
    assert drive(a.renew([d])) == [LOST]  # a learns it lost the job
    assert drive(b.renew([again])) == [RENEWED]


def test_a_worker_taking_back_its_own_lapsed_job_is_not_a_new_try_but_a_restart_is(
    producer: jobwire.Client, drive: Drive
) -> None:
    job = producer.enqueue("f")
    a = consumer(producer, "w", lease=0.3)
    drive(a.ensure_group())
    (d,) = drive(fetch(a, 1))
    time.sleep(0.5)  # a's renewals did not reach Redis
    (again,) = drive(a.reclaim(10))  # the same process takes it back: still its first try
    assert (again.entry_id, again.tries) == (d.entry_id, 1)
    time.sleep(0.5)
    # a process restarted under the same name (say, a pod's name) did not start it: a crash
    # loop on a poison job still counts tries, so max_tries stops it
    restarted = consumer(producer, "w", lease=0.3)
    (taken,) = drive(restarted.reclaim(10))
    assert taken.tries == 2 and job.info().job_try == 2


def test_renewal_keeps_a_job_leased(producer: jobwire.Client, drive: Drive) -> None:
    producer.enqueue("f")
    a, b = consumer(producer, "a", lease=0.5), consumer(producer, "b", lease=0.5)
    drive(a.ensure_group())
    (d,) = drive(fetch(a, 1))
    for _ in range(4):
        time.sleep(0.2)
        assert drive(a.renew([d])) == [RENEWED]
        assert drive(b.reclaim(10)) == []


def test_renew_reports_abort_requests(producer: jobwire.Client, drive: Drive) -> None:
    job = producer.enqueue("f")
    c = consumer(producer, "c")
    drive(c.ensure_group())
    (d,) = drive(fetch(c, 1))
    with pytest.raises(jobwire.JobTimeout):
        job.abort(timeout=0.1)
    assert drive(c.renew([d])) == [ABORT_REQUESTED]


def test_dead_letter_with_a_result_tells_the_waiting_client(redis_url: str) -> None:
    w = Worker(redis_url)
    with jobwire.Client.from_url(redis_url) as client:
        job = client.enqueue("no_such_function")
        (d,) = w.take()
        failure = w.result_for(d, "error", exc=LookupError("unknown function 'no_such_function'"))
        w.run(w.consumer.dead_letter(reason="unknown_function", message="no such function",
                                     data=d.data, delivery=d, result=failure))  # fmt: skip
        with pytest.raises(jobwire.JobFailed, match="unknown function"):
            job.result(timeout=5)
        assert client.dead_letters()[0].reason == "unknown_function"
    w.close()
