"""Values the clients return: job status, job info, results, dead letters, enqueue specs."""

from __future__ import annotations

import enum
import inspect
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from jobwire.wire import ErrorRecord, Format, JobEnvelope, JobHeader, ResultEnvelope

from .errors import InvalidArgument

__all__ = [
    "DeadLetter",
    "Delivery",
    "EnqueueOptions",
    "JobHandle",
    "JobInfo",
    "JobResult",
    "JobSpec",
    "JobStatus",
    "check_limit",
    "check_timeout",
    "function_name",
    "params_of",
    "seconds",
    "try_number",
]

S = TypeVar("S")
R = TypeVar("R")
P = ParamSpec("P")


class JobStatus(str, enum.Enum):
    """Where a job is in its life."""

    DEFERRED = "deferred"
    """Waiting for its start time."""
    QUEUED = "queued"
    """Ready; waiting for a worker."""
    IN_PROGRESS = "in_progress"
    """A worker is running it (or retrying it soon)."""
    COMPLETE = "complete"
    """Finished; its result is kept."""
    NOT_FOUND = "not_found"
    """Unknown, expired, or finished with its result no longer kept."""


@overload
def _dt(ms: int) -> datetime: ...
@overload
def _dt(ms: int | None) -> datetime | None: ...
def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def seconds(value: float | timedelta, what: str = "a duration") -> float:
    """A duration in seconds, from a number of seconds or a ``timedelta``.

    Anything else (a string, a bool, NaN, infinity) is an InvalidArgument naming ``what``.
    """
    if isinstance(value, timedelta):
        return value.total_seconds()
    given: object = value  # what the caller passed, whatever its annotation says
    if not isinstance(given, bool) and isinstance(given, numbers.Real) and math.isfinite(given):
        return float(given)
    raise InvalidArgument(f"{what} must be a number of seconds or a timedelta, not {value!r:.40}")


def check_limit(limit: int) -> int:
    """Return ``limit`` if it is a whole number from 1, else raise InvalidArgument."""
    if type(limit) is not int or limit < 1:
        raise InvalidArgument(f"limit must be a whole number from 1, not {limit!r:.40}")
    return limit


def check_timeout(timeout: float | None) -> float | None:
    """A wait's timeout in seconds (None: no limit), else raise InvalidArgument."""
    return None if timeout is None else seconds(timeout, "timeout")


def try_number(first_try: int, starts: int) -> int:
    """The try number of an execution: the envelope's first try plus the earlier starts."""
    return first_try + max(starts, 1) - 1


def function_name(function: str | Callable[..., Any]) -> str:
    """The registered name a job is enqueued under.

    A string is used as is; a task (``jobwire.task``, ``jobwire.worker.func``) carries its
    ``name``; any other callable is known by its ``__name__``.
    """
    if isinstance(function, str):
        return function
    if not callable(function):
        raise InvalidArgument(f"a job's function is a name or a callable, not {function!r:.40}")
    name = getattr(function, "name", None)
    if isinstance(name, str):
        return name
    return str(getattr(function, "__name__", function))


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job that is deferred, queued or in progress, as stored in Redis.

    ``args`` and ``kwargs`` are None when the job's format is not accepted by this client
    (a pickle job read by a client that does not accept pickle): its metadata is still here.
    """

    job_id: str
    function: str
    args: tuple[Any, ...] | None
    kwargs: dict[str, Any] | None
    queue_name: str
    status: JobStatus
    job_try: int
    enqueue_time: datetime
    defer_until: datetime | None = None
    expires: datetime | None = None
    format: Format = "json"
    headers: Mapping[str, str] = field(default_factory=dict)
    worker: str | None = None
    start_time: datetime | None = None

    @classmethod
    def from_stored(
        cls,
        header: JobHeader,
        status: JobStatus,
        *,
        tries: int = 0,
        worker: str | None = None,
        started_ms: int | None = None,
    ) -> JobInfo:
        """Build from a decoded envelope or header plus the job's Redis state."""
        # ``tries`` counts the starts so far: a running job is on its latest start, a waiting
        # one will be on the next.
        starts = tries if status is JobStatus.IN_PROGRESS else tries + 1
        return cls(
            job_id=header.id,
            function=header.function,
            args=header.args if isinstance(header, JobEnvelope) else None,
            kwargs=header.kwargs if isinstance(header, JobEnvelope) else None,
            queue_name=header.queue,
            status=status,
            job_try=try_number(header.job_try, starts),
            enqueue_time=datetime.fromtimestamp(header.enqueued_ms / 1000, tz=timezone.utc),
            defer_until=_dt(header.defer_until_ms),
            expires=_dt(header.expires_ms),
            format=header.format,
            headers=header.headers,
            worker=worker or None,
            start_time=_dt(started_ms),
        )


@dataclass(frozen=True, slots=True)
class JobResult:
    """The outcome of one execution of a job."""

    job_id: str
    function: str
    queue_name: str
    job_try: int
    outcome: str
    value: Any
    error: ErrorRecord | None
    exception: BaseException | None
    enqueue_time: datetime
    start_time: datetime
    finish_time: datetime
    worker: str
    format: Format

    @property
    def success(self) -> bool:
        """True when the job returned normally."""
        return self.outcome == "success"

    @property
    def duration(self) -> timedelta:
        """How long the execution took."""
        return self.finish_time - self.start_time

    @classmethod
    def from_envelope(cls, env: ResultEnvelope) -> JobResult:
        """Build from a decoded result envelope."""
        return cls(
            job_id=env.id,
            function=env.function,
            queue_name=env.queue,
            job_try=env.job_try,
            outcome=str(env.outcome),
            value=env.value,
            error=env.error,
            exception=env.exception,
            enqueue_time=_dt(env.enqueued_ms),
            start_time=_dt(env.started_ms),
            finish_time=_dt(env.finished_ms),
            worker=env.worker,
            format=env.format,
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message a worker could not run, kept with the reason and its raw bytes."""

    entry_id: str
    queue_name: str
    job_id: str | None
    reason: str
    message: str
    data: bytes
    time: datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """A job handed to a consumer: what the worker runs. ``tries`` counts starts so far.

    ``problem`` is None for a job to run, else a short code saying why the stored entry is
    malformed (``wrong_type``, ``bad_field``, ``no_job_id``, ``bad_job_id``): the delivery is
    still leased to this consumer, so that dead-lettering it acknowledges and removes it.
    ``job_id`` is always text (bytes that are not UTF-8 are shown with backslash escapes).
    """

    entry_id: str
    job_id: str
    data: bytes
    tries: int
    queue_name: str
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class EnqueueOptions:
    """The ``_`` options of one enqueue, as given (checked when the job is prepared)."""

    job_id: str | None = None
    queue_name: str | None = None
    defer_until: datetime | None = None
    defer_by: float | timedelta | None = None
    expires: float | timedelta | datetime | None = None
    job_try: int | None = None
    serializer: Format | None = None
    headers: Mapping[str, str] | None = None


class JobSpec:
    """One job for :meth:`Client.enqueue_many`: the same arguments as ``enqueue``.

    A task's enqueue options (``Task.enqueue_options``) are the defaults of its jobs.

    >>> JobSpec("send_email", 42, _queue_name="emails", subject="hi")  # doctest: +SKIP
    """

    __slots__ = ("args", "function", "kwargs", "options")

    def __init__(
        self,
        function: str | Callable[..., Any],
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_until: datetime | None = None,
        _defer_by: float | timedelta | None = None,
        _expires: float | timedelta | datetime | None = None,
        _job_try: int | None = None,
        _serializer: Format | None = None,
        _headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.options = EnqueueOptions(
            job_id=_job_id,
            queue_name=_queue_name,
            defer_until=_defer_until,
            defer_by=_defer_by,
            expires=_expires,
            job_try=_job_try,
            serializer=_serializer,
            headers=_headers,
        )
        # a task (``jobwire.task``) brings its own defaults; what is given here wins
        defaults = getattr(function, "enqueue_options", None)
        if isinstance(defaults, EnqueueOptions):
            given = {
                f.name: getattr(self.options, f.name)
                for f in fields(EnqueueOptions)
                if getattr(self.options, f.name) is not None
            }
            self.options = replace(defaults, **given)

    def __repr__(self) -> str:
        return f"JobSpec({function_name(self.function)!r}, args={self.args!r})"


def params_of(
    source: Callable[P, Any],
) -> Callable[[Callable[Concatenate[S, ...], R]], Callable[Concatenate[S, P], R]]:
    """Give a method the parameters of ``source`` (for type checkers and ``inspect``).

    ``Client.enqueue`` and ``AsyncClient.enqueue`` take exactly :class:`JobSpec`'s
    parameters; with this their long signature is written once, in ``JobSpec``.
    """
    params = list(inspect.signature(source).parameters.values())

    def apply(method: Callable[Concatenate[S, ...], R]) -> Callable[Concatenate[S, P], R]:
        self_param = next(iter(inspect.signature(method).parameters.values()))
        # functions accept new attributes; mypy knows no __signature__ on Callable
        method.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [self_param, *params], return_annotation=inspect.signature(method).return_annotation
        )
        return method

    return apply


_Client = TypeVar("_Client")


class JobHandle(Generic[_Client]):
    """What the blocking and asyncio job handles share: the job's id, queue and identity.

    Two handles are equal when they are of the same kind and name the same job in the same
    queue.
    """

    __slots__ = ("_client", "job_id", "queue_name")

    def __init__(self, client: _Client, job_id: str, queue_name: str) -> None:
        self._client = client
        self.job_id = job_id
        self.queue_name = queue_name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.job_id} on {self.queue_name!r}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, JobHandle)
            and type(other) is type(self)
            and (other.job_id, other.queue_name) == (self.job_id, self.queue_name)
        )

    def __hash__(self) -> int:
        return hash((self.job_id, self.queue_name))
