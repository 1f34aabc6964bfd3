"""The rules of one attempt at a job, written once for the worker and the in-memory twin.

Everything here is pure: given what Redis delivered (or what the twin holds), the registered
functions and the worker's defaults, :func:`plan` says what to do with a job (run it, refuse
it, dead-letter it, hand it to another worker) and :func:`conclude` turns how the function
ended into a retry or a final result (made by ``ResultEnvelope.of``, the one builder).
Nothing here talks to Redis or runs a job.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from jobwire import defaults
from jobwire.models import try_number
from jobwire.wire import (
    Codec,
    DecodeError,
    EncodeError,
    ErrorRecord,
    JobEnvelope,
    JobHeader,
    ResultEnvelope,
)

from .functions import DEFAULT_MAX_TRIES, Backoff, Function, Retry

__all__ = [
    "Defaults",
    "Final",
    "Poison",
    "Refused",
    "Run",
    "Unknown",
    "backoff_delay",
    "conclude",
    "dead_letter_result",
    "encode_result",
    "error_record",
    "job_context",
    "plan",
    "try_number",
]


@dataclass(frozen=True, slots=True)
class Defaults:
    """The worker-wide settings an attempt falls back to when its function has none."""

    max_tries: int = DEFAULT_MAX_TRIES
    job_timeout: float | None = 300.0
    keep_result: float = defaults.KEEP_RESULT
    keep_result_forever: bool = False
    retry_backoff: float = 1.0


@dataclass(frozen=True, slots=True)
class Run:
    """The job may run: with this function, try number, limits and result lifetime."""

    job: JobEnvelope
    function: Function
    job_try: int
    max_tries: int
    timeout: float | None
    keep: float | None  # seconds to keep the result; None: forever


@dataclass(frozen=True, slots=True)
class Refused:
    """The job must not run (too many tries, expired): it ends failed with ``error``."""

    run: Run
    error: ErrorRecord


@dataclass(frozen=True, slots=True)
class Poison:
    """The message cannot run anywhere: dead-letter it with ``reason``.

    ``header`` is what could be read of it (None when nothing could), for the failed result
    a waiting client receives.
    """

    reason: str
    message: str
    header: JobHeader | None


@dataclass(frozen=True, slots=True)
class Unknown:
    """No function of that name is registered here; another worker may have it."""

    job: JobEnvelope
    message: str


@dataclass(frozen=True, slots=True)
class Final:
    """How an attempt ends: ``retry_in`` seconds until the next try, or None when final."""

    outcome: str
    value: Any
    error: ErrorRecord | None
    exception: BaseException | None
    retry_in: float | None


def plan(
    codec: Codec,
    data: bytes,
    job_id: str,
    starts: int,
    functions: dict[str, Function],
    defaults: Defaults,
    now_ms: int,
) -> Run | Refused | Poison | Unknown:
    """Decide what to do with the stored bytes of a delivered job."""
    try:
        job = codec.decode_job(data)
    except DecodeError as exc:
        return Poison(exc.reason, str(exc), exc.header)
    if job.id != job_id:
        message = f"the envelope's id {job.id!r} is not the id it was queued under"
        return Poison("id_mismatch", message, None)
    function = functions.get(job.function)
    if function is None:
        return Unknown(job, f"no function {job.function!r} is registered")
    job_try = try_number(job.job_try, starts)
    max_tries = function.max_tries or defaults.max_tries
    timeout = function.timeout if function.timeout is not None else defaults.job_timeout
    run = Run(job, function, job_try, max_tries, timeout, _keep(function, defaults))
    if job_try > max_tries:
        error = ErrorRecord(
            "jobwire.MaxTriesExceeded", f"job reached its maximum of {max_tries} tries"
        )
        return Refused(run, error)
    if job.expires_ms is not None and now_ms > job.expires_ms:
        return Refused(
            run, ErrorRecord("jobwire.JobExpired", "the job expired before it could start")
        )
    return run


def _keep(function: Function, defaults: Defaults) -> float | None:
    forever = function.keep_result_forever
    if forever or (forever is None and defaults.keep_result_forever):
        return None
    return function.keep_result if function.keep_result is not None else defaults.keep_result


def job_context(
    base: dict[str, Any], run: Run, aborted: Any, progress: Any = None
) -> dict[str, Any]:
    """The context a job function receives first: ``base`` plus this execution's facts.

    ``progress`` is the job's progress callable (``ctx["progress"](0.4, "resizing")``).
    """
    job = run.job
    ctx = dict(base)
    ctx.update(
        job_id=job.id,
        job_try=run.job_try,
        enqueue_time=datetime.fromtimestamp(job.enqueued_ms / 1000, tz=timezone.utc),
        queue_name=job.queue,
        function=job.function,
        headers=dict(job.headers),
        aborted=aborted,
        args=job.args,
        kwargs=job.kwargs,
    )
    if progress is not None:
        ctx["progress"] = progress
    return ctx


def conclude(
    run: Run,
    outcome: str,
    value: Any = None,
    exc: BaseException | None = None,
    error: ErrorRecord | None = None,
    backoff: float = 1.0,
    rand: Callable[[], float] = random.random,
) -> Final:
    """How an attempt ends, given how its function ended.

    While tries remain, ``Retry`` asks for another try (after its ``defer``, else the
    function's ``backoff``, else ``backoff`` times the try number), and so does an exception
    the function lists in ``retry_on`` (after the function's ``backoff``, else
    ``Backoff(base=backoff)``); ``rand`` draws the jitter. At the limit a ``Retry`` is
    recorded as an error, a listed exception as itself. Any other exception is final.
    """
    if exc is None:
        return Final(outcome, value, error, None, None)
    function = run.function
    if isinstance(exc, Retry):
        if run.job_try < run.max_tries:
            if exc.defer is not None:
                delay = exc.defer
            elif function.backoff is not None:
                delay = backoff_delay(function.backoff, run.job_try, rand())
            else:
                delay = backoff * run.job_try
            return Final("error", None, error_record(exc), None, delay)
        exc = RuntimeError(f"Retry requested but the job reached max_tries={run.max_tries}")
    elif function.retry_on and isinstance(exc, function.retry_on) and run.job_try < run.max_tries:
        policy = function.backoff or Backoff(base=backoff)
        delay = backoff_delay(policy, run.job_try, rand())
        return Final("error", None, error_record(exc), None, delay)
    return Final("error", None, error_record(exc), exc, None)


def backoff_delay(policy: Backoff, job_try: int, rand: float) -> float:
    """Seconds to wait after try ``job_try`` failed: ``policy`` with ``rand`` in [0, 1).

    ``min(cap, base * 2 ** (job_try - 1))``, then jittered by ``policy.jitter``: ``"equal"``
    keeps between half and all of it, ``"full"`` between none and all, ``"none"`` all.
    """
    delay = min(policy.cap, policy.base * 2.0 ** min(max(job_try, 1) - 1, 64))
    if policy.jitter == "equal":
        return delay / 2 + delay / 2 * rand
    if policy.jitter == "full":
        return delay * rand
    return delay


def error_record(exc: BaseException) -> ErrorRecord:
    """The portable record of a job's exception (a process job's carries the child's)."""
    record = getattr(exc, "jobwire_record", None)
    return record if isinstance(record, ErrorRecord) else ErrorRecord.from_exception(exc)


def dead_letter_result(
    header: JobHeader, reason: str, message: str, worker: str, now_ms: int
) -> ResultEnvelope:
    """The failed result a client waiting for a dead-lettered job receives.

    Pickle jobs get it in JSON: nothing refused as pickle is answered in pickle.
    """
    result = ResultEnvelope.of(
        header,
        outcome="error",
        started_ms=now_ms,
        finished_ms=now_ms,
        worker=worker,
        error=ErrorRecord(f"jobwire.DeadLettered.{reason}", message),
    )
    return replace(result, format="json") if header.format == "pickle" else result


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
