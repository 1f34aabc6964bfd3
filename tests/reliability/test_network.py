"""Network faults between jobwire and Redis, made by a proxy the tests control.

Clients and workers talk to Redis through :class:`FaultProxy`; the tests check the outcome
on a direct connection. The faults: a request dropped before Redis sees it, a request Redis
ran whose reply is lost (the half-finished call: the caller cannot tell it ran), a
connection cut while a blocking command waits, a pipeline cut half-way, a stalled network,
every connection cut at once, and no connection at all. jobwire's clients resend a call
after a connection fails (``RedisSettings.retries`` times), so every call must be safe to
run twice; these tests check that no job is lost, stored twice, run twice or charged a try
for it, and that what cannot be retried ends in a typed error.

Job effects are recorded in this process (the worker runs in a loop thread here), outside
Redis, so runs are counted independently of the queue's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis

import jobwire
from jobwire import JobStatus, RedisSettings
from jobwire.keys import CONSUMER_GROUP, QueueKeys
from jobwire.packing import Lane, SyncLane
from jobwire.scripts import (
    ABORT,
    DEAD_LETTER,
    ENQUEUE,
    FETCH,
    FINISH,
    RENEW,
    RETRY,
    SCRIPTS,
    START,
)
from jobwire.worker import Retry, Worker, func
from tests.helpers.clients import ClientFactory, client_factory
from tests.helpers.proxy import FaultProxy, command_name
from tests.helpers.redis_harness import RedisServer
from tests.helpers.support import LoopThread, wait_until
from tests.helpers.workers import StartWorker

pytestmark = pytest.mark.slow

KEYS = QueueKeys("jobwire", "default")
LEASE = 1.0

# ------------------------------------------------------------------ job effects

_runs: list[tuple[str, int]] = []
_runs_lock = threading.Lock()


def _ran(ctx: dict[str, Any]) -> None:
    with _runs_lock:
        _runs.append((ctx["job_id"], ctx["job_try"]))


def runs_of(job_id: str) -> list[int]:
    """The tries with which a job's function ran, in order."""
    with _runs_lock:
        return [job_try for jid, job_try in _runs if jid == job_id]


async def record(ctx: dict[str, Any], x: int) -> int:
    _ran(ctx)
    return x * 2


async def record_slowly(ctx: dict[str, Any], seconds: float) -> str:
    _ran(ctx)  # counted when it starts: a second run shows at once
    await asyncio.sleep(seconds)
    return "done"


async def retry_once(ctx: dict[str, Any]) -> str:
    _ran(ctx)
    if ctx["job_try"] == 1:
        raise Retry(defer=0)
    return "second time"


FUNCTIONS = [func(record), func(record_slowly), func(retry_once)]


# ---------------------------------------------------------------------- fixtures


@pytest.fixture
def direct(redis_url: str) -> Iterator[redis.Redis]:
    """A plain connection to the server itself, to look at what the faults left."""
    with redis.Redis.from_url(redis_url) as r:
        for script in SCRIPTS.values():  # loaded, so a rule never meets a NOSCRIPT reply
            r.script_load(script.source)
        with _runs_lock:
            _runs.clear()
        yield r


@pytest.fixture
def proxy(redis_server: RedisServer, direct: redis.Redis) -> Iterator[FaultProxy]:
    p = FaultProxy(redis_server.port).start()
    yield p
    p.close()


@pytest.fixture
def producer(redis_url: str, direct: redis.Redis) -> Iterator[jobwire.Client]:
    """A client that bypasses the proxy (for the worker tests)."""
    with jobwire.Client.from_url(redis_url) as client:
        yield client


@pytest.fixture(params=["sync", "async"])
def make_client(
    request: pytest.FixtureRequest, proxy: FaultProxy, loop_thread: LoopThread
) -> Iterator[ClientFactory]:
    """Clients of the parametrized kind behind the proxy; settings as keyword arguments."""
    factory = client_factory(request, request.param, loop_thread)
    make = next(factory)
    yield lambda **settings: make(RedisSettings.from_url(proxy.url, **settings))
    next(factory, None)  # closes the clients


def script_call(script: Any) -> bytes:
    """The bytes that identify an EVALSHA of ``script`` in a request."""
    return script.sha.encode()


def pending(direct: redis.Redis) -> int:
    return int(direct.xpending(KEYS.stream, CONSUMER_GROUP)["pending"])


def deliveries(direct: redis.Redis) -> int:
    """How many times the one pending entry has been delivered (0: none pending)."""
    entries = direct.xpending_range(KEYS.stream, CONSUMER_GROUP, "-", "+", 1)
    return int(entries[0]["times_delivered"]) if entries else 0


def wait_blocked_in_read(direct: redis.Redis, only: bool = False) -> None:
    """Wait until a worker is blocked in XREADGROUP (so the next job goes that way).

    ``only``: until exactly one read is blocked, so that Redis has dropped the reads of
    links cut before (a job handed to one of those would wait for its lease).
    """

    def blocked() -> bool:
        reads = sum(
            c.get("cmd") == "xreadgroup" and "b" in str(c.get("flags", ""))
            for c in direct.client_list()
        )
        return reads == 1 if only else reads > 0

    assert wait_until(blocked, timeout=15), "the worker never blocked in XREADGROUP"


def settled(direct: redis.Redis, worker: Worker) -> bool:
    """The worker is done with every job (its last call returned), and nothing is left in
    the stream or the pending list."""
    return (
        worker.health()["ongoing"] == 0 and direct.xlen(KEYS.stream) == 0 and pending(direct) == 0
    )


# -------------------------------------------------------------------- clients


def test_an_enqueue_whose_reply_is_lost_is_resent_and_stored_once(
    make_client: ClientFactory, proxy: FaultProxy, direct: redis.Redis
) -> None:
    client = make_client()
    rule = proxy.on(script_call(ENQUEUE), "drop_reply")
    job = client.enqueue("f", 1)
    rule.wait()  # Redis ran it, the reply was lost, and the resent call ...
    assert job is not None  # ... is recognised as the same call, not as a taken id
    assert direct.xlen(KEYS.stream) == 1
    assert job.status() is JobStatus.QUEUED
    assert client.queue_size() == 1


def test_a_request_dropped_before_redis_saw_it_is_sent_again(
    make_client: ClientFactory, proxy: FaultProxy, direct: redis.Redis
) -> None:
    client = make_client()
    rule = proxy.on(script_call(ENQUEUE), "drop_request")
    job = client.enqueue("f", 1, _job_id="once")
    rule.wait()
    assert job is not None and job.job_id == "once"
    assert direct.xlen(KEYS.stream) == 1


def test_a_pipeline_cut_half_way_is_completed_by_the_resend_without_duplicates(
    make_client: ClientFactory, proxy: FaultProxy, direct: redis.Redis
) -> None:
    client = make_client()
    # ~600 KB of requests: several reads for the proxy, so Redis may answer the first
    # jobs before the rest has arrived; the connection is cut at the first reply
    specs = [jobwire.JobSpec("f", "x" * 300, _job_id=f"job-{i}") for i in range(2000)]
    rule = proxy.on(script_call(ENQUEUE), "drop_reply")
    jobs = client.enqueue_many(specs)
    rule.wait()
    assert [j.job_id for j in jobs] == [f"job-{i}" for i in range(2000)]  # none "taken"
    assert direct.xlen(KEYS.stream) == 2000
    assert client.queue_size() == 2000


def test_a_connection_cut_on_every_try_raises_redis_unavailable_after_the_retries(
    make_client: ClientFactory, proxy: FaultProxy, direct: redis.Redis
) -> None:
    client = make_client(retries=2)
    rule = proxy.on(script_call(ENQUEUE), "drop_request", times=3)
    with pytest.raises(jobwire.RedisUnavailable) as info:
        client.enqueue("f", 1)
    assert isinstance(info.value.__cause__, redis.ConnectionError)
    assert rule.acted == 3  # the first try and the 2 documented retries
    assert direct.xlen(KEYS.stream) == 0  # none of them reached Redis
    assert client.enqueue("f", 2) is not None  # the next call works
    assert direct.xlen(KEYS.stream) == 1


def test_a_stall_times_out_with_a_typed_error_and_a_retry_with_the_job_id_is_safe(
    make_client: ClientFactory, proxy: FaultProxy, direct: redis.Redis
) -> None:
    client = make_client(socket_timeout=0.5, retries=0)
    assert client.ping()
    with proxy.stalled(), pytest.raises(jobwire.RedisUnavailable) as info:
        client.enqueue("pay", 10, _job_id="payment-7")
    assert isinstance(info.value.__cause__, redis.TimeoutError)
    # the stalled request may still reach Redis late; retrying with the same job id is safe
    # either way: the job then exists once (None from the retry means the first one landed)
    client.enqueue("pay", 10, _job_id="payment-7")
    assert direct.xlen(KEYS.stream) == 1
    assert client.job("payment-7").status() is JobStatus.QUEUED


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_write_that_cannot_leave_times_out_and_the_lane_recovers(
    kind: str, proxy: FaultProxy
) -> None:
    """A request too big for the socket buffers while nothing reads them: the *write* waits.

    Its bound is ``socket_timeout`` as a read's is, on the connections the clients keep
    (the asyncio lane bounds its writes itself, jobwire.packing), and the lane is whole
    again once Redis reads.
    """
    settings = RedisSettings.from_url(proxy.url, socket_timeout=0.5, retries=0)
    big = ("SET", "big", b"x" * (64 << 20))  # more than both hops' socket buffers hold

    def check(send: Callable[[list[tuple[Any, ...]]], Any]) -> None:
        assert send([("PING",)]) == [True]
        started = time.monotonic()
        with proxy.stalled(), pytest.raises(redis.TimeoutError):
            send([big])
        assert time.monotonic() - started < 5
        assert send([("SET", "k", "1"), ("GET", "k")]) == [True, b"1"]

    if kind == "sync":
        client = settings.sync_client()
        lane = SyncLane(client)
        try:
            check(lane.send)
        finally:
            lane.close()
            client.close()
        return

    async def main() -> None:
        client = settings.async_client()
        lane = Lane(client)
        loop = asyncio.get_running_loop()
        try:
            # the checks block (the proxy's stall): they run in a thread, sends on this loop
            await asyncio.to_thread(
                check, lambda c: asyncio.run_coroutine_threadsafe(lane.send(c), loop).result()
            )
        finally:
            await lane.close()
            await client.aclose()

    asyncio.run(main())


def test_waiting_for_a_result_survives_cuts_during_the_blocking_wait(
    make_client: ClientFactory,
    proxy: FaultProxy,
    start_worker: StartWorker,
    redis_url: str,
) -> None:
    client = make_client()
    job = client.enqueue(record, 21)
    rule = proxy.on(command_name("BLMOVE"), "cut_later", times=2, delay=0.2)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(job.result, 30)
        rule.wait()  # the wait was cut twice while blocked
        start_worker(FUNCTIONS, url=redis_url)  # the worker itself needs no proxy here
        assert waiting.result(30) == 42
    assert runs_of(job.job_id) == [1]


def test_an_abort_whose_reply_is_lost_still_reports_the_abort(
    make_client: ClientFactory, proxy: FaultProxy, direct: redis.Redis
) -> None:
    client = make_client()
    job = client.enqueue("f", 1)
    rule = proxy.on(script_call(ABORT), "drop_reply")
    assert job.abort(timeout=5) is True
    rule.wait()
    with pytest.raises(jobwire.JobAborted):
        job.result(timeout=5)
    assert direct.xlen(KEYS.stream) == 0


# --------------------------------------------------------------------- workers


def test_a_finish_whose_reply_is_lost_stores_one_result(
    proxy: FaultProxy,
    start_worker: StartWorker,
    producer: jobwire.Client,
    direct: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rule = proxy.on(script_call(FINISH), "drop_reply")
    worker = start_worker(FUNCTIONS, url=proxy.url)
    job = producer.enqueue(record, 5)
    assert job is not None and job.result(timeout=30) == 10
    rule.wait()
    assert wait_until(lambda: settled(direct, worker))  # the resent finish has returned
    assert runs_of(job.job_id) == [1]
    assert len(job.results()) == 1  # it did not record a second execution
    assert "reclaimed" not in caplog.text  # no lease had to run out


def test_a_retry_whose_reply_is_lost_runs_the_job_once_more_only(
    proxy: FaultProxy,
    start_worker: StartWorker,
    producer: jobwire.Client,
    direct: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rule = proxy.on(script_call(RETRY), "drop_reply")
    worker = start_worker(FUNCTIONS, url=proxy.url)
    job = producer.enqueue(retry_once)
    assert job is not None and job.result(timeout=30) == "second time"
    rule.wait()
    assert wait_until(lambda: settled(direct, worker))
    assert runs_of(job.job_id) == [1, 2]
    assert [r.outcome for r in job.results()] == ["success", "error"]
    # the second try ran when it was delivered, not after waiting out a lease
    assert "reclaimed" not in caplog.text


def test_a_dead_letter_whose_reply_is_lost_is_recorded_once(
    proxy: FaultProxy,
    start_worker: StartWorker,
    producer: jobwire.Client,
    direct: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rule = proxy.on(script_call(DEAD_LETTER), "drop_reply")
    worker = start_worker(FUNCTIONS, url=proxy.url, unknown_function_grace=0)
    job = producer.enqueue("no_such_function")
    assert job is not None
    with pytest.raises(jobwire.JobFailed, match="no_such_function"):
        job.result(timeout=30)
    rule.wait()
    assert wait_until(lambda: settled(direct, worker))
    assert [d.reason for d in producer.dead_letters()] == ["unknown_function"]
    assert "reclaimed" not in caplog.text  # no lease had to run out


def test_a_fetch_whose_reply_is_lost_runs_its_jobs_once_after_the_lease(
    proxy: FaultProxy, start_worker: StartWorker, producer: jobwire.Client, direct: redis.Redis
) -> None:
    jobs = [producer.enqueue(record, i) for i in range(3)]
    rule = proxy.on(script_call(FETCH), "drop_reply")
    worker = start_worker(FUNCTIONS, url=proxy.url, lease=LEASE)
    assert [j.result(timeout=30) for j in jobs if j is not None] == [0, 2, 4]
    rule.wait()
    assert wait_until(lambda: settled(direct, worker))
    # the lost reply left them leased to the worker: they ran when the lease ran out, once,
    # and the start whose reply was lost is not counted as a try
    assert [runs_of(j.job_id) for j in jobs if j is not None] == [[1], [1], [1]]


@pytest.mark.parametrize(
    ("lost", "after_the_lease"),
    [
        # the entries were delivered to the worker but not started: they wait for the lease
        pytest.param(command_name("XREADGROUP"), True, id="xreadgroup"),
        # the start ran: the resent start returns the same jobs, not a second try
        pytest.param(script_call(START), False, id="start"),
    ],
)
def test_a_blocking_read_whose_reply_is_lost_runs_the_job_once_as_its_first_try(
    lost: bytes,
    after_the_lease: bool,
    proxy: FaultProxy,
    start_worker: StartWorker,
    producer: jobwire.Client,
    direct: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rule = proxy.on(lost, "drop_reply")  # armed before the worker's first blocking read
    worker = start_worker(FUNCTIONS, url=proxy.url, lease=LEASE)
    wait_blocked_in_read(direct)
    job = producer.enqueue(record, 3)
    assert job is not None and job.result(timeout=30) == 6
    rule.wait()
    assert wait_until(lambda: settled(direct, worker))
    assert runs_of(job.job_id) == [1]
    assert ("reclaimed" in caplog.text) is after_the_lease


def test_cuts_during_the_blocking_read_do_not_stop_the_worker(
    proxy: FaultProxy,
    start_worker: StartWorker,
    producer: jobwire.Client,
    direct: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rule = proxy.on(command_name("XREADGROUP"), "cut_later", times=3, delay=0.2)
    worker = start_worker(FUNCTIONS, url=proxy.url, lease=LEASE)
    rule.wait()
    wait_blocked_in_read(direct, only=True)
    job = producer.enqueue(record, 5)
    assert job is not None and job.result(timeout=30) == 10
    assert wait_until(lambda: settled(direct, worker))
    assert runs_of(job.job_id) == [1]
    assert "reclaimed" not in caplog.text  # no lease had to run out


@pytest.mark.parametrize("fault", ["renewals_fail", "stall"])
def test_a_worker_cut_off_past_its_lease_does_not_run_its_job_twice(
    fault: str,
    proxy: FaultProxy,
    start_worker: StartWorker,
    producer: jobwire.Client,
    direct: redis.Redis,
) -> None:
    worker = start_worker(FUNCTIONS, url=proxy.url, lease=LEASE)
    job = producer.enqueue(record_slowly, 3 * LEASE)
    assert job is not None
    assert wait_until(lambda: job.status() is JobStatus.IN_PROGRESS)
    # the lease runs out while the job runs
    if fault == "renewals_fail":
        renewals = proxy.on(script_call(RENEW), "drop_request", times=1000)
        # the worker's own reclaim takes the job back (a second delivery of its entry)
        assert wait_until(lambda: deliveries(direct) == 2)
        proxy.off(renewals)
        assert renewals.acted > 0
    else:
        with proxy.stalled():  # every call waits; renewal and reclaim arrive late, in any order
            time.sleep(2 * LEASE)
    assert job.result(timeout=30) == "done"
    assert wait_until(lambda: settled(direct, worker))
    assert runs_of(job.job_id) == [1]  # not started a second time
    assert len(job.results()) == 1


def test_the_worker_recovers_after_every_connection_is_cut_and_redis_is_unreachable(
    proxy: FaultProxy, start_worker: StartWorker, producer: jobwire.Client, direct: redis.Redis
) -> None:
    worker = start_worker(FUNCTIONS, url=proxy.url, lease=LEASE, allow_abort_jobs=True)
    events = KEYS.events

    def subscribers() -> int:  # abort notices are sharded pub/sub
        _name, count = direct.execute_command("PUBSUB", "SHARDNUMSUB", events)
        return int(count)

    assert wait_until(lambda: subscribers() == 1)
    long_job = producer.enqueue(record_slowly, 60)
    assert long_job is not None
    assert wait_until(lambda: long_job.status() is JobStatus.IN_PROGRESS)
    with proxy.refusing():  # every connection cut, and no new one for a while
        assert wait_until(lambda: subscribers() == 0)
        time.sleep(2 * LEASE)
    # the worker reconnects everything, its abort channel included
    assert wait_until(lambda: subscribers() == 1, timeout=15)
    assert long_job.abort(timeout=15) is True
    job = producer.enqueue(record, 6)
    assert job is not None and job.result(timeout=30) == 12
    assert wait_until(lambda: settled(direct, worker))
    assert runs_of(long_job.job_id) == [1]  # started once, then aborted
    assert runs_of(job.job_id) == [1]
