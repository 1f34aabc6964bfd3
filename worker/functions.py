"""What a worker runs: registered functions, their options, and ``Retry``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from jobwire.wire import Codec, EncodeError, ErrorRecord, JobEnvelope, JobHeader, ResultEnvelope

__all__ = [
    "DEFAULT_MAX_TRIES",
    "Executor",
    "Function",
    "Retry",
    "dead_letter_result",
    "encode_result",
    "func",
    "job_context",
    "refusal",
    "retry_delay",
]

Executor = Literal["loop", "thread", "process"]
#: How many times a job may start when neither its function nor the worker says otherwise.
DEFAULT_MAX_TRIES = 5
_EXECUTORS = ("loop", "thread", "process")


class Retry(Exception):
    """Raise inside a job to run it again later.

    ``defer`` is the delay (seconds or timedelta); without it the worker backs off by try
    number (``retry_backoff`` seconds times the try). ``max_tries`` still applies.
    """

    def __init__(self, defer: float | timedelta | None = None) -> None:
        seconds = defer.total_seconds() if isinstance(defer, timedelta) else defer
        super().__init__(f"retry requested (defer={seconds})")
        self.defer = seconds

    def __reduce__(self) -> tuple[type[Retry], tuple[float | None]]:
        # rebuilt from ``defer`` (not from the message) when it crosses a process boundary
        return (Retry, (self.defer,))


@dataclass(frozen=True, slots=True)
class Function:
    """A job function registered with a worker, with its per-function options.

    ``None`` options fall back to the worker's settings.
    """

    name: str
    coroutine: Callable[..., Any]
    timeout: float | None = None
    max_tries: int | None = None
    keep_result: float | None = None
    keep_result_forever: bool | None = None
    executor: Executor = "loop"

    @property
    def is_async(self) -> bool:
        """True for ``async def`` functions."""
        return inspect.iscoroutinefunction(self.coroutine)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function itself (handy in tests)."""
        return self.coroutine(*args, **kwargs)


def _seconds(value: float | timedelta | None) -> float | None:
    return value.total_seconds() if isinstance(value, timedelta) else value


def func(
    coroutine: Callable[..., Any] | Function,
    *,
    name: str | None = None,
    timeout: float | timedelta | None = None,
    max_tries: int | None = None,
    keep_result: float | timedelta | None = None,
    keep_result_forever: bool | None = None,
    executor: Executor | None = None,
) -> Function:
    """Register a job function with options.

    ``executor``: ``"loop"`` runs an ``async def`` on the worker's event loop (the default
    for coroutines); ``"thread"`` runs a ``def`` in the worker's thread pool (the default
    for plain functions); ``"process"`` runs a ``def`` in a process of the worker's pool,
    for CPU-bound work (the function, its arguments and its result must be picklable with
    cloudpickle). Every function receives the job context first, as in arq.
    """
    if isinstance(coroutine, Function):
        coroutine = coroutine.coroutine
    is_async = inspect.iscoroutinefunction(coroutine)
    chosen: Executor = executor or ("loop" if is_async else "thread")
    if chosen not in _EXECUTORS:
        raise ValueError(f"executor must be one of {_EXECUTORS}, not {chosen!r}")
    if chosen == "loop" and not is_async:
        raise ValueError(f"{coroutine!r} is not async: use executor='thread' or 'process'")
    if chosen != "loop" and is_async:
        raise ValueError(f"{coroutine!r} is async: it runs on the loop (executor='loop')")
    if max_tries is not None and max_tries < 1:
        raise ValueError("max_tries must be at least 1")
    return Function(
        name=name or coroutine.__name__,
        coroutine=coroutine,
        timeout=_seconds(timeout),
        max_tries=max_tries,
        keep_result=_seconds(keep_result),
        keep_result_forever=keep_result_forever,
        executor=chosen,
    )


# The rules of one execution, shared by the worker and the in-memory twin's eager mode.


def refusal(job: JobHeader, job_try: int, max_tries: int, now_ms: int) -> ErrorRecord | None:
    """Why a delivered job must not run (too many tries, expired), or None if it may."""
    if job_try > max_tries:
        return ErrorRecord(
            "jobwire.MaxTriesExceeded", f"job reached its maximum of {max_tries} tries"
        )
    if job.expires_ms is not None and now_ms > job.expires_ms:
        return ErrorRecord("jobwire.JobExpired", "the job expired before it could start")
    return None


def retry_delay(
    exc: BaseException, job_try: int, max_tries: int, backoff: float
) -> tuple[float | None, BaseException]:
    """What a job's exception calls for: (seconds until the next try or None, what to record).

    ``Retry`` asks for another try while tries remain (after its ``defer``, or ``backoff``
    times the try number); at the limit the failure is recorded as an error instead.
    """
    if not isinstance(exc, Retry):
        return None, exc
    if job_try < max_tries:
        return (exc.defer if exc.defer is not None else backoff * job_try), exc
    return None, RuntimeError(f"Retry requested but the job reached max_tries={max_tries}")


def job_context(
    base: dict[str, Any], job: JobEnvelope, job_try: int, aborted: Any
) -> dict[str, Any]:
    """The context a job function receives first: ``base`` plus this execution's facts."""
    ctx = dict(base)
    ctx.update(
        job_id=job.id,
        job_try=job_try,
        enqueue_time=datetime.fromtimestamp(job.enqueued_ms / 1000, tz=timezone.utc),
        queue_name=job.queue,
        function=job.function,
        headers=dict(job.headers),
        aborted=aborted,
    )
    return ctx


def dead_letter_result(
    header: JobHeader, reason: str, message: str, worker: str, now_ms: int
) -> ResultEnvelope:
    """The failed result a client waiting for a dead-lettered job receives.

    Pickle jobs get it in JSON: nothing refused as pickle is answered in pickle.
    """
    return ResultEnvelope(
        id=header.id,
        function=header.function,
        queue=header.queue,
        job_try=header.job_try,
        outcome="error",
        error=ErrorRecord(f"jobwire.DeadLettered.{reason}", message),
        enqueued_ms=header.enqueued_ms,
        started_ms=now_ms,
        finished_ms=now_ms,
        worker=worker,
        format="json" if header.format == "pickle" else header.format,
    )


def encode_result(codec: Codec, result: ResultEnvelope) -> tuple[bytes, ResultEnvelope]:
    """Encode a result, or else the failure to encode it: the job ends either way.

    A return value may have no encoding in the job's format, or make the result larger than
    the size limit; the job then fails with that error. Returns the bytes and the result
    they hold.
    """
    try:
        return codec.encode_result(result), result
    except EncodeError as bad:
        error = ErrorRecord.from_exception(bad)
        failed = replace(result, outcome="error", value=None, exception=None, error=error)
        return codec.encode_result(failed), failed
