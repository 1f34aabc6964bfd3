"""OpenTelemetry traces for enqueue and job attempts (the optional ``jobwire[otel]`` extra).

When the ``opentelemetry-api`` package is installed, an enqueue is a *producer* span
(``send {queue}``) whose W3C trace context (``traceparent``, ``tracestate``) travels in the
job's envelope headers, and each attempt of the job is a *consumer* span (``process
{queue}``) that continues it, in any language that wrote those headers (a Node producer's
``traceparent`` is continued the same way). Attributes follow OpenTelemetry's messaging
semantic conventions (``messaging.system``, ``messaging.operation.type``,
``messaging.destination.name``, ``messaging.message.id``) plus ``jobwire.function``,
``jobwire.try`` and ``jobwire.outcome``.

Spans go wherever the application's tracer provider sends them; with no SDK configured the
API's no-op tracer makes them almost free and nothing is injected. Without the package
nothing is imported and every hook here is a shared do-nothing object.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from types import TracebackType
from typing import Any

__all__ = ["Processing", "Sending", "process", "send"]

_SYSTEM = "jobwire"
_tracer: Any = None  # opentelemetry's tracer once loaded; False when the API is missing
_trace: Any = None  # the opentelemetry.trace module, once loaded
_named_in_environment = False  # OTEL_PYTHON_TRACER_PROVIDER was set when the API loaded
_UNKNOWN = object()


def _load() -> Any:
    """The tracer, or None when there is nothing to trace into.

    None without the package, and while the application has set no tracer provider: the
    API's default provider only makes spans that record nothing and inject nothing, so
    skipping them changes nothing but their per-job cost. Checked on each call, since an
    application may set its provider after jobwire's first use.
    """
    global _tracer, _trace, _named_in_environment
    if _tracer is None:
        if importlib.util.find_spec("opentelemetry") is None:
            _tracer = False
        else:
            from opentelemetry import trace

            from ._version import __version__

            _trace = trace
            _named_in_environment = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
            # a proxy: spans go to whichever provider the application sets, even later
            _tracer = trace.get_tracer("jobwire", __version__)
    if not _tracer:
        return None
    if _trace is None:  # a tracer set from outside (tests do)
        from opentelemetry import trace as module

        _trace = module
    if isinstance(_tracer, _trace.ProxyTracer) and not _provider_set(_trace):
        return None  # the proxy has no provider behind it yet
    return _tracer


def _provider_set(trace: Any) -> bool:
    """Whether the application has set a tracer provider (in code or by environment).

    ``get_tracer_provider()`` reads the environment on each call while none is set, which
    was a good part of a job's cost in a worker that traces nothing; the module global it
    reads first tells the same without it (the public call decides whenever it may differ).
    """
    provider = getattr(trace, "_TRACER_PROVIDER", _UNKNOWN)
    if provider is None and not _named_in_environment:
        return False
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


class Sending:
    """The producer span of one enqueue (or one batch); ``headers`` carry its context."""

    __slots__ = ("_span", "headers")

    def __init__(self, span: Any = None, headers: dict[str, str] | None = None) -> None:
        self._span = span
        #: trace-context headers to add to each job's envelope (None when not tracing)
        self.headers = headers

    def sent(self, job_id: str) -> None:
        """Name the job the span sent (single enqueues)."""
        if self._span is not None:
            self._span.set_attribute("messaging.message.id", job_id)

    def __enter__(self) -> Sending:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._span is not None:
            _end(self._span, exc)


_NOT_SENDING = Sending()


def send(queue: str, count: int = 1) -> Sending:
    """Start the producer span of an enqueue of ``count`` jobs to ``queue``."""
    tracer = _load()
    if tracer is None:
        return _NOT_SENDING
    from opentelemetry import propagate, trace

    attributes: dict[str, Any] = {
        "messaging.system": _SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "enqueue",
        "messaging.destination.name": queue,
    }
    if count != 1:
        attributes["messaging.batch.message_count"] = count
    span = tracer.start_span(f"send {queue}", kind=trace.SpanKind.PRODUCER, attributes=attributes)
    if not span.is_recording():
        return _NOT_SENDING
    headers: dict[str, str] = {}
    propagate.inject(headers, context=trace.set_span_in_context(span))
    return Sending(span, headers)


class Processing:
    """The consumer span of one attempt, current while the job's function runs."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Any = None) -> None:
        self._span = span
        self._token: Any = None

    def __bool__(self) -> bool:
        """True when it records a span (False: tracing is off, nothing to do)."""
        return self._span is not None

    def ended(self, outcome: str, exc: BaseException | None, error_type: str | None) -> None:
        """Record how the attempt ended (``error_type`` when there is no exception)."""
        if self._span is None:
            return
        self._span.set_attribute("jobwire.outcome", outcome)
        if outcome == "success":
            return
        if exc is not None:
            _failed(self._span, exc)
        else:
            from opentelemetry.trace import Status, StatusCode

            self._span.set_attribute("error.type", error_type or outcome)
            self._span.set_status(Status(StatusCode.ERROR, outcome))

    def __enter__(self) -> Processing:
        if self._span is not None:
            from opentelemetry import context, trace

            self._token = context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._span is not None:
            from opentelemetry import context

            context.detach(self._token)
            _end(self._span, exc)


_NOT_PROCESSING = Processing()


def process(
    headers: Mapping[str, str], *, queue: str, job_id: str, function: str, job_try: int
) -> Processing:
    """Start the consumer span of one attempt, continuing the trace its headers carry."""
    tracer = _load()
    if tracer is None:
        return _NOT_PROCESSING
    from opentelemetry import propagate, trace

    parent = propagate.extract(dict(headers)) if headers else None
    span = tracer.start_span(
        f"process {queue}",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": _SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": queue,
            "messaging.message.id": job_id,
            "jobwire.function": function,
            "jobwire.try": job_try,
        },
    )
    return Processing(span) if span.is_recording() else _NOT_PROCESSING


def _end(span: Any, exc: BaseException | None) -> None:
    if exc is not None:
        _failed(span, exc)
    span.end()


def _failed(span: Any, exc: BaseException) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.record_exception(exc)
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:200]))
