"""OpenTelemetry: an enqueue is a producer span, each attempt a consumer span continuing it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import jobwire
from jobwire import tracing
from jobwire.worker import func
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker
from tests.worker.test_interop import (  # noqa: F401 (node_project: the fixture)
    NODE_TRACEPARENT,
    node_project,
    run_node_producer,
)


class Declined(Exception):
    pass


def _current_span_id() -> str:
    return format(trace.get_current_span().get_span_context().span_id, "016x")


async def on_loop(ctx: dict[str, Any]) -> str:
    return _current_span_id()


def in_thread(ctx: dict[str, Any]) -> str:
    return _current_span_id()


async def declines(ctx: dict[str, Any]) -> None:
    raise Declined("card declined")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans of jobwire's tracer, kept in memory (the global provider stays untouched)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    saved = tracing._tracer
    tracing._tracer = provider.get_tracer("jobwire")
    yield exporter
    tracing._tracer = saved
    provider.shutdown()


def _by_kind(exporter: InMemorySpanExporter, kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is kind]


def _hex(span_id: int) -> str:
    return format(span_id, "016x")


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("function", [on_loop, in_thread], ids=["loop", "thread"])
def test_the_attempt_continues_the_enqueue_trace(
    spans: InMemorySpanExporter,
    start_worker: StartWorker,
    redis_url: str,
    kind: str,
    function: Any,
) -> None:
    start_worker([func(function)])
    if kind == "sync":
        with jobwire.Client.from_url(redis_url) as client:
            job = client.enqueue(function.__name__)
            current = job.result(timeout=10)
    else:

        async def main() -> str:
            async with await jobwire.AsyncClient.connect(redis_url) as client:
                job = await client.enqueue(function.__name__)
                return str(await job.result(timeout=10))

        current = asyncio.run(main())
    (send,) = _by_kind(spans, SpanKind.PRODUCER)
    assert wait_until(lambda: len(_by_kind(spans, SpanKind.CONSUMER)) == 1, 5)
    (process,) = _by_kind(spans, SpanKind.CONSUMER)
    assert send.name == "send default" and process.name == "process default"
    assert process.parent is not None
    assert process.parent.span_id == send.context.span_id
    assert process.context.trace_id == send.context.trace_id
    assert current == _hex(process.context.span_id)  # the job's code runs inside the span
    assert send.attributes is not None and process.attributes is not None
    assert send.attributes["messaging.system"] == "jobwire"
    assert send.attributes["messaging.operation.type"] == "send"
    assert send.attributes["messaging.destination.name"] == "default"
    assert send.attributes["messaging.message.id"] == process.attributes["messaging.message.id"]
    assert process.attributes["messaging.operation.type"] == "process"
    assert process.attributes["jobwire.function"] == function.__name__
    assert process.attributes["jobwire.try"] == 1
    assert process.attributes["jobwire.outcome"] == "success"


def test_a_failed_attempt_is_an_error_span_with_the_exception(
    spans: InMemorySpanExporter, start_worker: StartWorker, redis_url: str
) -> None:
    start_worker([func(declines, max_tries=1)])
    with jobwire.Client.from_url(redis_url) as client:
        job = client.enqueue("declines")
        with pytest.raises(jobwire.JobFailed):
            job.result(timeout=10)
    assert wait_until(lambda: len(_by_kind(spans, SpanKind.CONSUMER)) == 1, 5)
    (process,) = _by_kind(spans, SpanKind.CONSUMER)
    assert process.status.status_code is StatusCode.ERROR
    assert process.attributes is not None
    assert process.attributes["error.type"] == "Declined"
    assert process.attributes["jobwire.outcome"] == "error"
    (event,) = [e for e in process.events if e.name == "exception"]
    assert event.attributes is not None and "card declined" in str(
        event.attributes["exception.message"]
    )


def test_a_batch_is_one_span_whose_context_every_job_carries(
    spans: InMemorySpanExporter, redis_url: str
) -> None:
    with jobwire.Client.from_url(redis_url) as client:
        jobs = client.enqueue_many([jobwire.JobSpec("f", i) for i in range(3)])
        infos = [job.info() for job in jobs if job is not None]
    (send,) = _by_kind(spans, SpanKind.PRODUCER)
    assert send.attributes is not None and send.attributes["messaging.batch.message_count"] == 3
    parents = {info.headers["traceparent"].split("-")[2] for info in infos if info is not None}
    assert parents == {_hex(send.context.span_id)}


def test_the_callers_own_headers_win_over_the_injected_context(
    spans: InMemorySpanExporter, redis_url: str
) -> None:
    mine = "00-11111111111111111111111111111111-2222222222222222-01"
    with jobwire.Client.from_url(redis_url) as client:
        job = client.enqueue("f", _headers={"traceparent": mine})
        assert job is not None
        info = job.info()
    assert info is not None and info.headers["traceparent"] == mine


def test_without_a_tracer_nothing_is_injected(redis_url: str) -> None:
    # the API alone (no SDK configured): spans are not recorded and headers stay as given
    with jobwire.Client.from_url(redis_url) as client:
        job = client.enqueue("f")
        assert job is not None
        info = job.info()
    assert info is not None and info.headers == {}


def test_a_node_producers_traceparent_is_continued(
    spans: InMemorySpanExporter,
    node_project: Path,  # noqa: F811 (the fixture)
    start_worker: StartWorker,
    redis_url: str,
) -> None:
    from tests.worker.test_interop import add as node_add
    from tests.worker.test_interop import fail, greet

    start_worker([node_add, greet, fail])
    assert len(run_node_producer(node_project, redis_url)) == 4
    assert wait_until(lambda: len(_by_kind(spans, SpanKind.CONSUMER)) == 4, 5)
    _, trace_id, parent_id, _ = NODE_TRACEPARENT.split("-")
    for process in _by_kind(spans, SpanKind.CONSUMER):
        assert format(process.context.trace_id, "032x") == trace_id
        assert process.parent is not None and _hex(process.parent.span_id) == parent_id
        assert process.parent.is_remote


def test_importing_jobwire_imports_no_opentelemetry_of_its_own() -> None:
    # (recent redis-py versions load a little of opentelemetry themselves when it is there)
    code = (
        "import sys\n"
        "import redis, redis.asyncio\n"
        "before = {m for m in sys.modules if m.startswith('opentelemetry')}\n"
        "import jobwire, jobwire.worker, jobwire.testing\n"
        "print(sorted({m for m in sys.modules if m.startswith('opentelemetry')} - before))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


PROVIDER_LATER = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from jobwire import tracing

def span():
    return tracing.process({}, queue="q", job_id="j", function="f", job_try=1)

assert span() is tracing._NOT_PROCESSING
trace.set_tracer_provider(TracerProvider())  # after jobwire's first use, as an app may
assert span() is not tracing._NOT_PROCESSING
print("traced")
"""


def test_a_provider_set_after_jobwires_first_use_is_traced_into_at_once() -> None:
    # (a process of its own: a global tracer provider can be set only once)
    done = subprocess.run(
        [sys.executable, "-c", PROVIDER_LATER], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "traced"
