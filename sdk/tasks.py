"""Job functions declared once, with their options: ``@jobwire.task`` and :class:`Task`.

A task is a job function together with how a worker runs it (timeout, tries, retries,
executor, result lifetime) and how it is enqueued by default (queue, and any enqueue
option). The worker registers it from ``WorkerSettings.functions``; producers import the
module that declares it (not the worker) and enqueue it typed::

    @jobwire.task(max_tries=5, queue_name="emails")
    async def send_email(ctx, user_id: int) -> None: ...

    send_email.enqueue(client, user_id=42)          # jobwire.Client: a Job (or None)
    await send_email.enqueue(async_client, user_id=42)  # jobwire.AsyncClient
    send_email.with_options(defer_by=60).enqueue(client, user_id=42)

The parameters after the context are those of the function (``ParamSpec``): a type
checker refuses a wrong argument. ``client.enqueue("send_email", ...)`` and
``client.enqueue(send_email, ...)`` keep working, untyped.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Concatenate, Generic, Literal, Protocol, overload

from typing_extensions import ParamSpec, TypeVar

from jobwire.wire import Format

from .errors import InvalidArgument
from .keys import check_name
from .models import EnqueueOptions, JobSpec, seconds

__all__ = ["Backoff", "Enqueuer", "Executor", "Task", "task"]

Executor = Literal["loop", "thread", "process"]
Jitter = Literal["equal", "full", "none"]
EXECUTORS: tuple[Executor, ...] = ("loop", "thread", "process")
JITTERS: tuple[Jitter, ...] = ("equal", "full", "none")

# defaults let ``Task`` (and its alias ``jobwire.worker.Function``) be written bare
P = ParamSpec("P", default=...)
R = TypeVar("R", default=Any)
P2 = ParamSpec("P2")
R2 = TypeVar("R2")
J = TypeVar("J")
J_co = TypeVar("J_co", covariant=True)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: how long a job waits before its next try.

    After try ``n`` fails, the delay is ``d = min(cap, base * 2 ** (n - 1))`` seconds
    (1, 2, 4, 8 ... with the defaults), then jittered: ``"equal"`` (the default) waits
    between ``d / 2`` and ``d``, ``"full"`` between 0 and ``d``, ``"none"`` exactly ``d``.
    """

    base: float = 1.0
    cap: float = 300.0
    jitter: Jitter = "equal"

    def __post_init__(self) -> None:
        for name in ("base", "cap"):
            value: object = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
                or value < 0
            ):
                raise InvalidArgument(f"Backoff {name} must be seconds from 0, not {value!r:.40}")
        if self.jitter not in JITTERS:
            raise InvalidArgument(f"Backoff jitter must be one of {JITTERS}, not {self.jitter!r}")


@dataclass(frozen=True, slots=True)
class Task(Generic[P, R]):
    """A job function with its options, as ``@task`` (or ``jobwire.worker.func``) makes it.

    ``None`` options fall back to the worker's settings. Calling a task calls the function
    (handy in tests). ``enqueue_options`` are the defaults of every enqueue of the task.
    """

    name: str
    fn: Callable[Concatenate[Any, P], R]  # the job function: ``async def`` or plain ``def``
    timeout: float | None = None
    max_tries: int | None = None
    keep_result: float | None = None
    keep_result_forever: bool | None = None
    executor: Executor = "loop"
    retry_on: tuple[type[Exception], ...] = ()
    backoff: Backoff | None = None
    enqueue_options: EnqueueOptions = field(default_factory=EnqueueOptions)

    @property
    def is_async(self) -> bool:
        """True for ``async def`` functions."""
        return inspect.iscoroutinefunction(self.fn)

    def __call__(self, ctx: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function itself, with ``ctx`` as its job context."""
        return self.fn(ctx, *args, **kwargs)

    def with_options(
        self,
        *,
        job_id: str | None = None,
        queue_name: str | None = None,
        defer_until: datetime | None = None,
        defer_by: float | timedelta | None = None,
        expires: float | timedelta | datetime | None = None,
        job_try: int | None = None,
        serializer: Format | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Task[P, R]:
        """A copy of the task with other enqueue options (``client.enqueue``'s, without ``_``).

        >>> send_email.with_options(job_id="welcome-42", defer_by=60)  # doctest: +SKIP
        """
        given = {k: v for k, v in locals().items() if k != "self" and v is not None}
        options = dataclasses.replace(self.enqueue_options, **given)
        return dataclasses.replace(self, enqueue_options=options)

    def spec(self, *args: P.args, **kwargs: P.kwargs) -> JobSpec:
        """One job of this task, for ``client.enqueue_many([...])``."""
        arguments: dict[str, Any] = kwargs
        return JobSpec(self, *args, **arguments)

    def enqueue(self, client: Enqueuer[J], /, *args: P.args, **kwargs: P.kwargs) -> J:
        """Enqueue a job of this task with ``client``, with the task's enqueue options.

        A ``Client`` returns the Job (None if its ``job_id`` is taken); an ``AsyncClient``
        returns a coroutine of the AsyncJob.
        """
        arguments: dict[str, Any] = kwargs
        return client.enqueue(self, *args, **arguments)


class Enqueuer(Protocol[J_co]):
    """What ``Task.enqueue`` needs of a client: ``Client`` and ``AsyncClient`` are ones."""

    def enqueue(self, function: Any, /, *args: Any, **kwargs: Any) -> J_co:
        """Enqueue ``function(*args, **kwargs)``: the job handle (or a coroutine of it)."""
        ...


def _seconds(value: float | timedelta | None, name: str, *, zero: bool) -> float | None:
    """An option's duration in seconds (None stays None); InvalidArgument if it is wrong."""
    if value is None:
        return None
    number = seconds(value, name)
    if number < 0 or (number == 0 and not zero):
        least = "0" if zero else "more than 0"
        raise InvalidArgument(f"{name} must be {least} seconds, not {value!r}")
    return number


def _exceptions(
    retry_on: type[Exception] | Iterable[type[Exception]] | None,
) -> tuple[type[Exception], ...] | None:
    if retry_on is None:
        return None
    items = (retry_on,) if isinstance(retry_on, type) else tuple(retry_on)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, Exception)):
            raise InvalidArgument(f"retry_on holds exception classes, not {item!r:.40}")
    return items


def _backoff(value: float | timedelta | Backoff | None) -> Backoff | None:
    if value is None or isinstance(value, Backoff):
        return value
    return Backoff(base=seconds(value, "backoff"))


def _build(
    fn: Callable[..., Any],
    name: str | None,
    timeout: float | timedelta | None,
    max_tries: int | None,
    keep_result: float | timedelta | None,
    keep_result_forever: bool | None,
    executor: Executor | None,
    retry_on: type[Exception] | Iterable[type[Exception]] | None,
    backoff: float | timedelta | Backoff | None,
    queue_name: str | None,
) -> Task[..., Any]:
    base: Task[..., Any] | None = fn if isinstance(fn, Task) else None
    if base is not None:
        fn = base.fn
    if not callable(fn):
        raise InvalidArgument(f"a job function must be callable, not {fn!r:.40}")
    is_async = inspect.iscoroutinefunction(fn)
    chosen = executor or (base.executor if base else ("loop" if is_async else "thread"))
    if chosen not in EXECUTORS:
        raise InvalidArgument(f"executor must be one of {EXECUTORS}, not {chosen!r}")
    if chosen == "loop" and not is_async:
        raise InvalidArgument(f"{fn!r} is not async: use executor='thread' or 'process'")
    if chosen != "loop" and is_async:
        raise InvalidArgument(f"{fn!r} is async: it runs on the loop (executor='loop')")
    if max_tries is not None and (type(max_tries) is not int or max_tries < 1):
        raise InvalidArgument(f"max_tries must be a whole number from 1, not {max_tries!r:.40}")
    if name is None:
        name = base.name if base else getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"a job function's name must be a non-empty string, not {name!r:.40}")
    given: dict[str, Any] = {
        "timeout": _seconds(timeout, "timeout", zero=False),
        "max_tries": max_tries,
        "keep_result": _seconds(keep_result, "keep_result", zero=True),
        "keep_result_forever": keep_result_forever,
        "retry_on": _exceptions(retry_on),
        "backoff": _backoff(backoff),
    }
    made = base or Task(name=name, fn=fn)
    made = dataclasses.replace(
        made,
        name=name,
        executor=chosen,
        **{k: v for k, v in given.items() if v is not None},
    )
    if queue_name is None:
        return made
    return made.with_options(queue_name=check_name("queue name", queue_name))


@overload
def task(
    fn: Callable[Concatenate[Any, P2], R2],
    /,
    *,
    name: str | None = None,
    timeout: float | timedelta | None = None,
    max_tries: int | None = None,
    keep_result: float | timedelta | None = None,
    keep_result_forever: bool | None = None,
    executor: Executor | None = None,
    retry_on: type[Exception] | Iterable[type[Exception]] | None = None,
    backoff: float | timedelta | Backoff | None = None,
    queue_name: str | None = None,
) -> Task[P2, R2]: ...
@overload
def task(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    timeout: float | timedelta | None = None,
    max_tries: int | None = None,
    keep_result: float | timedelta | None = None,
    keep_result_forever: bool | None = None,
    executor: Executor | None = None,
    retry_on: type[Exception] | Iterable[type[Exception]] | None = None,
    backoff: float | timedelta | Backoff | None = None,
    queue_name: str | None = None,
) -> Callable[[Callable[Concatenate[Any, P2], R2]], Task[P2, R2]]: ...
def task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    timeout: float | timedelta | None = None,
    max_tries: int | None = None,
    keep_result: float | timedelta | None = None,
    keep_result_forever: bool | None = None,
    executor: Executor | None = None,
    retry_on: type[Exception] | Iterable[type[Exception]] | None = None,
    backoff: float | timedelta | Backoff | None = None,
    queue_name: str | None = None,
) -> Task[..., Any] | Callable[[Callable[..., Any]], Task[..., Any]]:
    """Declare a job function with its options: ``@task``, ``@task(...)`` or ``task(fn, ...)``.

    The function receives the job context first, as in arq. Options (``None``: the worker's
    setting, or the task's own when ``fn`` is a task already):

    * ``name``: the name jobs are enqueued under (the function's ``__name__``);
    * ``timeout`` (seconds or timedelta), ``max_tries`` (starts allowed, retries included),
      ``keep_result`` (seconds), ``keep_result_forever``;
    * ``executor``: ``"loop"`` runs an ``async def`` on the worker's event loop (the default
      for coroutines); ``"thread"`` runs a ``def`` in the worker's thread pool (the default
      for plain functions); ``"process"`` runs a ``def`` in a process of the worker's pool,
      for CPU-bound work (function, arguments and result must be picklable by cloudpickle);
    * ``retry_on``: exception classes that retry the job (while ``max_tries`` allows) instead
      of failing it; any other exception fails it at once. A timeout or an abort is never
      retried this way;
    * ``backoff``: the wait before a retry, a :class:`Backoff` or its ``base`` in seconds.
      Without it, ``retry_on`` retries wait ``Backoff(base=retry_backoff)`` (the worker's
      ``retry_backoff``, 1 s: about 1, 2, 4 ... s, at most 300 s, equal jitter). It also
      applies to a ``Retry()`` raised without a ``defer``, which otherwise waits
      ``retry_backoff`` times the try number;
    * ``queue_name``: the queue ``enqueue`` puts jobs in (the client's default otherwise).

    Bad options are an :class:`~jobwire.InvalidArgument` naming the option.
    """
    options = (name, timeout, max_tries, keep_result, keep_result_forever, executor)
    more = (retry_on, backoff, queue_name)
    if fn is None:
        return lambda f: _build(f, *options, *more)
    return _build(fn, *options, *more)
