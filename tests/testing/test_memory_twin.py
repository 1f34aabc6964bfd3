"""What only the in-memory twins have: their interface, test controls and eager mode.

Their client behaviour is proven by the shared modules (test_enqueue, test_results,
test_listings), which run every case against the Redis clients and the twins alike.
"""

from __future__ import annotations

import asyncio
import doctest
import inspect
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import jobwire
import jobwire.testing
from jobwire import JobStatus
from jobwire.testing import AsyncMemoryClient, MemoryClient, MemoryStore
from jobwire.worker import Retry, func
from tests.helpers.clients import AsyncView
from tests.helpers.support import LoopThread, public_methods

TWINS = [(jobwire.Client, MemoryClient), (jobwire.AsyncClient, AsyncMemoryClient)]
CONTROLS = {
    "enqueued_jobs", "set_in_progress", "set_complete", "set_failed", "set_dead_letter",
    "abort_requested", "clear", "run_jobs",
}  # fmt: skip


# ---------------------------------------------------------------------- interface


@pytest.mark.parametrize(("real", "twin"), TWINS, ids=["sync", "async"])
def test_twin_has_every_client_method_with_the_same_signature(real: type, twin: type) -> None:
    real_methods, twin_methods = public_methods(real), public_methods(twin)
    assert set(twin_methods) == set(real_methods) | CONTROLS
    for name, method in real_methods.items():
        twin_method = twin_methods[name]
        assert inspect.signature(twin_method) == inspect.signature(method), name  # type: ignore[arg-type]
        assert inspect.iscoroutinefunction(twin_method) == inspect.iscoroutinefunction(method)
    assert issubclass(twin, real)  # code typed against the real client accepts the twin


def test_both_twins_have_the_same_controls() -> None:
    sync, aio = public_methods(MemoryClient), public_methods(AsyncMemoryClient)
    for name in CONTROLS:
        assert inspect.signature(sync[name]) == inspect.signature(aio[name]), name  # type: ignore[arg-type]
        assert inspect.getdoc(sync[name]), name
    assert inspect.iscoroutinefunction(aio["run_jobs"])  # it may await async jobs
    assert not any(inspect.iscoroutinefunction(aio[n]) for n in CONTROLS - {"run_jobs"})


def test_job_handles_are_the_real_ones() -> None:
    assert type(MemoryClient().enqueue("f")) is jobwire.Job

    async def main() -> Any:
        return await (await AsyncMemoryClient.connect("redis://ignored")).enqueue("f")

    assert type(asyncio.run(main())) is jobwire.AsyncJob


def test_the_twin_never_opens_a_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the twin tried to connect")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    client = MemoryClient.from_url("redis://nowhere.invalid:6379/0")
    job = client.enqueue("f", 1)
    assert client.ping() and job.status() is JobStatus.QUEUED
    client.close()


def test_module_example_runs() -> None:
    assert doctest.testmod(jobwire.testing).failed == 0


def test_readme_pytest_example_passes(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("<!-- testing example: begin -->")[1].split("<!-- testing example: end")[0]
    code = block.split("```python\n")[1].split("```")[0]
    (tmp_path / "test_orders.py").write_text(code)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_orders.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout


# ------------------------------------------------------------------- controls


def test_enqueued_jobs_records_every_accepted_job_in_order() -> None:
    client = MemoryClient()
    client.enqueue("send_email", "a@example.com", subject="hi", _job_id="one")
    client.enqueue("send_email", "b@example.com", _job_id="one")  # taken: not recorded
    client.enqueue("resize", 256, _queue_name="images")
    client.enqueue("report", _defer_by=60)
    client.set_complete("one", "sent")  # recorded as enqueued, whatever happened since
    records = client.enqueued_jobs()  # of every queue, in the order they were enqueued
    assert [(r.function, r.args, r.kwargs, r.status) for r in records] == [
        ("send_email", ("a@example.com",), {"subject": "hi"}, JobStatus.QUEUED),
        ("resize", (256,), {}, JobStatus.QUEUED),
        ("report", (), {}, JobStatus.DEFERRED),
    ]
    assert [r.function for r in client.enqueued_jobs("images")] == ["resize"]
    assert [r.function for r in client.enqueued_jobs("default")] == ["send_email", "report"]


def test_run_jobs_runs_every_queue_by_default_and_one_when_named() -> None:
    async def resize(ctx: dict[str, Any], size: int) -> int:
        return size // 2

    client = MemoryClient(functions=[resize])
    images = client.enqueue("resize", 256, _queue_name="images")
    default = client.enqueue("resize", 10)
    assert images is not None and default is not None
    assert client.run_jobs("images") == 1
    assert images.result() == 128 and default.status() is JobStatus.QUEUED
    assert client.run_jobs() == 1  # what is left: the default queue's job
    assert default.result() == 5
    client.clear()
    assert client.enqueued_jobs() == [] and client.queue_size("images") == 0


def test_setters_raise_the_clients_typed_errors() -> None:
    client = MemoryClient()
    with pytest.raises(jobwire.JobNotFound):
        client.set_complete("missing", 1)
    with pytest.raises(jobwire.JobNotFound):
        client.set_in_progress("missing")
    job = client.enqueue("f")
    client.set_in_progress(job.job_id)
    with pytest.raises(jobwire.InvalidArgument, match="already in progress"):
        client.set_in_progress(job.job_id)
    with pytest.raises(jobwire.InvalidArgument, match="outcome"):
        client.set_failed(job.job_id, RuntimeError(), outcome="success")
    client.set_complete(job.job_id, 1)
    with pytest.raises(jobwire.JobNotFound):
        client.set_complete(job.job_id, 2)  # finished jobs stay finished
    odd = client.enqueue("f")
    client.set_complete(odd.job_id, object())  # no JSON for it: the job fails, as on a worker
    with pytest.raises(jobwire.JobFailed, match="UnsupportedValue"):
        odd.result()
    with pytest.raises(jobwire.InvalidArgument, match="eager"):
        MemoryClient(eager=True)


def test_a_twin_waiter_wakes_when_another_thread_sets_the_result() -> None:
    client = MemoryClient()
    job = client.enqueue("f")
    timer = threading.Timer(0.2, client.set_complete, (job.job_id, "late"))
    timer.start()
    assert job.result(timeout=30) == "late"
    timer.join()


def test_an_async_twin_waiter_wakes_on_a_write_from_its_loop_or_a_thread() -> None:
    async def main() -> list[Any]:
        client = AsyncMemoryClient()
        first, second = await client.enqueue("f"), await client.enqueue("g")
        waits = [asyncio.ensure_future(first.result(timeout=30)) for _ in range(5)]
        waits.append(asyncio.ensure_future(second.result(timeout=30)))
        await asyncio.sleep(0.05)
        client.set_complete(first.job_id, 1)  # from the loop
        await asyncio.to_thread(client.set_complete, second.job_id, 2)  # from a thread
        return list(await asyncio.gather(*waits))

    assert asyncio.run(main()) == [1, 1, 1, 1, 1, 2]


def test_sync_and_async_twins_on_one_store_share_jobs() -> None:
    store = MemoryStore()
    producer = AsyncMemoryClient(store=store)
    job = asyncio.run(producer.enqueue("f", 7))
    reader = MemoryClient(store=store)
    assert reader.job(job.job_id).info().args == (7,)


# ----------------------------------------------------------------------- eager


def add(ctx: dict[str, Any], a: int, b: int) -> int:
    return a + b


async def add_async(ctx: dict[str, Any], a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


class PaymentDeclined(Exception):
    pass


def charge(ctx: dict[str, Any], amount: int) -> None:
    raise PaymentDeclined(f"{amount} declined")


def flaky(ctx: dict[str, Any]) -> str:
    if ctx["job_try"] < 3:
        raise Retry(defer=3600)  # eager mode runs the retry at once
    return f"ok on try {ctx['job_try']}"


def context(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {
        "job_id": ctx["job_id"], "job_try": ctx["job_try"], "queue": ctx["queue_name"],
        "headers": ctx["headers"], "db": ctx["db"], "args": list(ctx["args"]),
        "thread": threading.get_ident(),
    }  # fmt: skip


FUNCTIONS = [add, add_async, charge, flaky, context, func(add, name="never_retried", max_tries=1)]


@pytest.fixture(params=["memory-sync", "memory-async"])
def eager(request: pytest.FixtureRequest, loop_thread: LoopThread) -> Any:
    """An eager twin of either kind (the async one seen through its loop thread)."""
    options: dict[str, Any] = {"functions": FUNCTIONS, "eager": True, "ctx": {"db": "test-db"}}
    if request.param == "memory-sync":
        return MemoryClient(**options)

    async def build() -> AsyncMemoryClient:
        return AsyncMemoryClient(**options)

    return AsyncView(loop_thread.run(build()), loop_thread)


def test_eager_mode_runs_plain_and_async_functions_at_enqueue(eager: Any) -> None:
    plain, coro = eager.enqueue("add", 1, 2), eager.enqueue(add_async, 3, b=4)
    assert plain.status() is JobStatus.COMPLETE and plain.result() == 3
    assert coro.result() == 7
    assert eager.queue_size() == 0


def test_eager_jobs_get_the_workers_context(eager: Any) -> None:
    job = eager.enqueue(context, 1, _headers={"traceparent": "00-abc-def-01"}, _queue_name="q")
    ctx = job.result()
    assert ctx["job_id"] == job.job_id and ctx["job_try"] == 1 and ctx["queue"] == "q"
    assert ctx["headers"] == {"traceparent": "00-abc-def-01"} and ctx["args"] == [1]
    assert ctx["db"] == "test-db"  # the twin's ctx, as on_startup would set it


def test_the_async_twin_runs_plain_functions_off_its_loop() -> None:
    async def main() -> tuple[int, int]:
        client = AsyncMemoryClient(functions=[context], eager=True, ctx={"db": None})
        job = await client.enqueue(context)
        return (await job.result())["thread"], threading.get_ident()

    job_thread, loop_thread = asyncio.run(main())
    assert job_thread != loop_thread  # a blocking job never blocks the app's event loop


def test_eager_failures_read_like_worker_failures(eager: Any) -> None:
    job = eager.enqueue(charge, 10)
    with pytest.raises(jobwire.JobFailed) as info:
        job.result()
    assert info.value.error.type.endswith("PaymentDeclined")
    assert info.value.error.message == "10 declined" and "charge" in info.value.error.traceback


def test_eager_retries_run_at_once_up_to_max_tries(eager: Any) -> None:
    job = eager.enqueue(flaky)
    assert job.result() == "ok on try 3"
    assert [r.outcome for r in job.results()] == ["success", "error", "error"]
    limited = eager.enqueue("never_retried", 1, 1)  # max_tries=1 and no Retry: just runs
    assert limited.result() == 2


def test_eager_unknown_function_is_dead_lettered_as_a_worker_would(eager: Any) -> None:
    job = eager.enqueue("no_such_function", 1)
    with pytest.raises(jobwire.JobFailed, match="unknown_function"):
        job.result()
    (letter,) = eager.dead_letters()
    assert letter.job_id == job.job_id and letter.reason == "unknown_function"


def test_eager_twin_refuses_pickle_jobs_unless_it_accepts_pickle() -> None:
    strict = MemoryClient(functions=[add], eager=True)
    job = strict.enqueue(add, 1, 2, _serializer="pickle")
    assert strict.dead_letters()[0].reason == "format_refused"
    assert job.status() is JobStatus.COMPLETE  # with a failed result
    trusting = MemoryClient(functions=[add], eager=True, accept=("json", "msgpack", "pickle"))
    assert trusting.enqueue(add, 1, 2, _serializer="pickle").result() == 3


def test_eager_enqueue_many_runs_each_job() -> None:
    client = MemoryClient(functions=[add], eager=True)
    jobs = client.enqueue_many([jobwire.JobSpec(add, i, i) for i in range(5)])
    assert [j.result() for j in jobs] == [0, 2, 4, 6, 8]


def test_run_jobs_runs_what_is_queued_like_a_burst_worker() -> None:
    client = MemoryClient(functions=[add, flaky])
    first, second = client.enqueue(add, 1, 1), client.enqueue(add, 2, 2)
    later = client.enqueue(add, 3, 3, _defer_by=3600)
    assert first.status() is JobStatus.QUEUED  # not eager: nothing ran yet
    assert client.run_jobs() == 2
    assert (first.result(), second.result()) == (2, 4)
    assert later.status() is JobStatus.DEFERRED
    assert client.run_jobs(include_deferred=True) == 1 and later.result() == 6
    retried = client.enqueue(flaky)
    assert client.run_jobs() == 1  # Retry(defer=3600): deferred again after its first try
    assert retried.status() is JobStatus.DEFERRED
    assert client.run_jobs(include_deferred=True) == 2 and retried.result() == "ok on try 3"


def test_async_run_jobs() -> None:
    async def main() -> Any:
        client = AsyncMemoryClient(functions=[add_async])
        job = await client.enqueue(add_async, 20, 22)
        assert await client.run_jobs() == 1
        return await job.result()

    assert asyncio.run(main()) == 42


def test_abort_of_a_running_job_waits_for_the_test_to_end_it() -> None:
    client = MemoryClient()
    job = client.enqueue("f")
    client.set_in_progress(job.job_id)

    def end_it() -> None:
        while not client.abort_requested(job.job_id):
            threading.Event().wait(0.01)
        client.set_failed(job.job_id, RuntimeError("stopped"), outcome="aborted")

    thread = threading.Thread(target=end_it)
    thread.start()
    assert job.abort(timeout=30) is True
    thread.join()
    with pytest.raises(jobwire.JobAborted):
        job.result()


def test_eager_mode_keeps_results_as_the_function_says() -> None:
    client = MemoryClient(
        functions=[func(add, name="unkept", keep_result=0), func(add, keep_result_forever=True)],
        eager=True,
        keep_result=0.2,
    )
    with pytest.raises(jobwire.ResultNotFound):
        client.enqueue("unkept", 1, 1).result()
    kept = client.enqueue("add", 1, 1)
    lazy = MemoryClient(store=client.store, keep_result=0.2)  # not eager
    aborted_early = lazy.enqueue("f", _defer_by=60)
    assert aborted_early.abort() is True  # its result is kept for keep_result: 0.2 s
    assert aborted_early.status() is JobStatus.COMPLETE
    threading.Event().wait(0.3)
    assert kept.result() == 2 and aborted_early.status() is JobStatus.NOT_FOUND


# ------------------------------------------------------- events, progress and stats


def test_eager_jobs_write_the_events_progress_and_stats_a_worker_would() -> None:
    def resize(ctx: dict[str, Any], n: int) -> int:
        ctx["progress"](0.25, "loading")
        from jobwire.worker import progress

        progress(0.75, "resizing")
        if n < 0:
            raise ValueError("negative")
        return n

    async def flaky(ctx: dict[str, Any]) -> str:
        if ctx["job_try"] < 2:
            raise Retry()
        return "ok"

    client = MemoryClient(functions=[resize, flaky], eager=True)
    job = client.enqueue("resize", 3)
    E = jobwire.EventType
    assert [e.type for e in job.events()] == [
        E.ENQUEUED, E.STARTED, E.PROGRESS, E.PROGRESS, E.SUCCEEDED,
    ]  # fmt: skip
    assert [e.progress.value for e in job.events() if e.progress] == [0.25, 0.75]
    assert job.progress() is None  # the job ended
    with pytest.raises(jobwire.JobFailed):
        client.enqueue("resize", -1).result()
    assert [e.type for e in client.enqueue("flaky").events()] == [
        E.ENQUEUED, E.STARTED, E.RETRIED, E.STARTED, E.SUCCEEDED,
    ]  # fmt: skip
    stats = client.stats()
    assert stats.total("resize").counts["success"] == 1
    assert stats.total("resize").counts["error"] == 1
    assert stats.total("flaky").counts["retried"] == 1
    assert stats.total().executions == 4


def test_a_twin_job_reports_progress_while_it_runs() -> None:
    gate = threading.Event()

    def long(ctx: dict[str, Any]) -> str:
        ctx["progress"](0.5, "half")
        gate.wait(10)
        return "done"

    client = MemoryClient(functions=[long])
    job = client.enqueue("long")
    runner = threading.Thread(target=client.run_jobs)
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while job.progress() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        progress = job.progress()
        assert progress is not None and (progress.value, progress.message) == (0.5, "half")
    finally:
        gate.set()
        runner.join(10)
    assert job.result() == "done"


def test_async_twin_follows_events_as_they_are_written() -> None:
    async def scenario() -> list[str]:
        client = AsyncMemoryClient()
        follower = client.events(timeout=5)
        first = asyncio.ensure_future(follower.__anext__())
        await asyncio.sleep(0.05)
        job = await client.enqueue("push", 1)
        event = await first
        return [event.type.value, event.job_id == job.job_id and "same"]

    assert asyncio.run(scenario()) == ["enqueued", "same"]
