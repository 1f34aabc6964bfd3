"""The values that cross Redis: job and result envelopes and the portable error record.

These are plain frozen dataclasses. Turning them into bytes and back is the job of
:class:`jobwire.wire.Codec`; nothing here does I/O.
"""

from __future__ import annotations

import traceback as _traceback
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal

__all__ = [
    "DEFAULT_QUEUE",
    "FORMATS",
    "MAX_MS",
    "MAX_RESULT_TRY",
    "MAX_TRY",
    "OUTCOMES",
    "WIRE_VERSION",
    "ErrorRecord",
    "Format",
    "JobEnvelope",
    "JobHeader",
    "Outcome",
    "ResultEnvelope",
]

#: The queue of a job whose envelope names none.
DEFAULT_QUEUE: Final = "default"
#: The version this code writes: ``(major, minor)``. Readers accept every minor of their major.
WIRE_VERSION: Final = (1, 0)

Format = Literal["json", "msgpack", "pickle"]
#: Every format name this version knows, in the order of preference for documentation.
FORMATS: Final[tuple[Format, ...]] = ("json", "msgpack", "pickle")

Outcome = Literal["success", "error", "timeout", "aborted"]
#: Outcomes defined by wire 1.0. Readers treat any other outcome as a failure.
OUTCOMES: Final[tuple[Outcome, ...]] = ("success", "error", "timeout", "aborted")

#: Largest ``try`` of a job envelope: a signed 32-bit integer, so any language can hold it.
MAX_TRY: Final = 2**31 - 1
#: Largest ``try`` of a result envelope. A result's try is its job's try plus the re-deliveries
#: since, so it gets headroom above :data:`MAX_TRY`: a worker can always record a job it was
#: able to decode. 2**53 - 1 is still exact in an IEEE double (JavaScript numbers).
MAX_RESULT_TRY: Final = 2**53 - 1
#: Largest millisecond timestamp: 9999-12-31T23:59:59.999Z, the last instant a ``datetime``
#: (and most languages' date types) can hold. The smallest is 0, the Unix epoch.
MAX_MS: Final = 253_402_300_799_999

_MAX_CAUSE_DEPTH: Final = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class JobHeader:
    """A job's metadata: everything but its arguments.

    A header can always be read without decoding (or unpickling) the arguments. The codec
    enforces the wire ranges when encoding and decoding: ``job_try`` in 1..:data:`MAX_TRY`,
    the ``*_ms`` times in 0..:data:`MAX_MS` (plain ``int``, never ``bool``).
    """

    id: str
    function: str
    queue: str = DEFAULT_QUEUE
    enqueued_ms: int
    job_try: int = 1
    defer_until_ms: int | None = None
    expires_ms: int | None = None
    format: Format = "json"
    headers: dict[str, str] = field(default_factory=dict)
    version: tuple[int, int] = WIRE_VERSION

    def header(self) -> JobHeader:
        """Return the metadata alone (a plain :class:`JobHeader`)."""
        return JobHeader(**self.header_fields())

    def header_fields(self) -> dict[str, Any]:
        """The metadata as keyword arguments of :class:`JobHeader`."""
        return {name: getattr(self, name) for name in _HEADER_FIELDS}


_HEADER_FIELDS: Final = tuple(f.name for f in fields(JobHeader))


@dataclass(frozen=True, slots=True, kw_only=True)
class JobEnvelope(JobHeader):
    """A job as it is queued: its metadata plus positional and keyword arguments."""

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """A portable description of an exception, readable in every format and language.

    ``type`` is ``module.QualName`` of the exception class (``builtins.ValueError``).
    ``cause`` is the explicit ``raise ... from`` cause or the implicit context, if any.
    """

    type: str
    message: str
    traceback: str = ""
    cause: ErrorRecord | None = None

    @classmethod
    def from_exception(
        cls, exc: BaseException, *, with_traceback: bool = True, _depth: int = 0
    ) -> ErrorRecord:
        """Describe ``exc`` (and up to 8 levels of its cause chain) as a record."""
        tp = type(exc)
        tb = ""
        if with_traceback and exc.__traceback__ is not None:
            tb = "".join(_traceback.format_exception(tp, exc, exc.__traceback__, chain=False))
        # Same rule as Python's own traceback printing: an explicit cause wins, an implicit
        # context counts unless it was suppressed with ``raise ... from None``.
        nested = exc.__cause__
        if nested is None and not exc.__suppress_context__:
            nested = exc.__context__
        cause = None
        if nested is not None and _depth < _MAX_CAUSE_DEPTH:
            cause = cls.from_exception(nested, with_traceback=with_traceback, _depth=_depth + 1)
        return cls(
            type=f"{tp.__module__}.{tp.__qualname__}", message=str(exc), traceback=tb, cause=cause
        )

    def chain(self) -> list[ErrorRecord]:
        """Return this record followed by its causes, outermost first."""
        out: list[ErrorRecord] = []
        rec: ErrorRecord | None = self
        while rec is not None:
            out.append(rec)
            rec = rec.cause
        return out

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultEnvelope:
    """What a worker stores when a job execution ends.

    On success ``value`` holds the return value. Otherwise ``error`` describes what happened;
    for pickle jobs ``exception`` may hold the original exception object (only when the reader
    accepts pickle). The codec enforces ``job_try`` in 1..:data:`MAX_RESULT_TRY` and the
    ``*_ms`` times in 0..:data:`MAX_MS`.
    """

    id: str
    function: str
    queue: str = DEFAULT_QUEUE
    job_try: int = 1
    outcome: Outcome | str = "success"
    value: Any = None
    error: ErrorRecord | None = None
    exception: BaseException | None = None
    enqueued_ms: int
    started_ms: int
    finished_ms: int
    worker: str = ""
    format: Format = "json"
    version: tuple[int, int] = WIRE_VERSION

    @classmethod
    def of(
        cls,
        job: JobHeader,
        *,
        outcome: Outcome | str,
        started_ms: int,
        finished_ms: int,
        function: str | None = None,
        job_try: int | None = None,
        worker: str = "",
        value: Any = None,
        error: ErrorRecord | None = None,
        exception: BaseException | None = None,
    ) -> ResultEnvelope:
        """The result of one execution of ``job`` (the one place results are made).

        ``function`` and ``job_try`` default to the job's own.
        """
        return cls(
            id=job.id,
            function=job.function if function is None else function,
            queue=job.queue,
            job_try=job.job_try if job_try is None else job_try,
            outcome=outcome,
            value=value,
            error=error,
            exception=exception,
            enqueued_ms=job.enqueued_ms,
            started_ms=started_ms,
            finished_ms=finished_ms,
            worker=worker,
            format=job.format,
        )

    @property
    def success(self) -> bool:
        """True when the job returned normally."""
        return self.outcome == "success"
