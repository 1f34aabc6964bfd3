"""What a worker runs: registered functions, their options, and ``Retry``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from jobwire import defaults
from jobwire.errors import InvalidArgument
from jobwire.models import seconds

__all__ = [
    "DEFAULT_MAX_TRIES",
    "Executor",
    "Function",
    "Retry",
    "func",
]

Executor = Literal["loop", "thread", "process"]
#: How many times a job may start when neither its function nor the worker says otherwise.
DEFAULT_MAX_TRIES = defaults.MAX_TRIES
_EXECUTORS = ("loop", "thread", "process")


class Retry(Exception):
    """Raise inside a job to run it again later.

    ``defer`` is the delay (seconds or timedelta); without it the worker backs off by try
    number (``retry_backoff`` seconds times the try). ``max_tries`` still applies. A delay
    that is no duration is an :class:`~jobwire.InvalidArgument` (the job fails with it).
    """

    def __init__(self, defer: float | timedelta | None = None) -> None:
        delay = None if defer is None else max(0.0, seconds(defer, "Retry's defer"))
        super().__init__(f"retry requested (defer={delay})")
        self.defer = delay

    def __reduce__(self) -> tuple[type[Retry], tuple[float | None]]:
        # rebuilt from ``defer`` (not from the message) when it crosses a process boundary
        return (Retry, (self.defer,))


@dataclass(frozen=True, slots=True)
class Function:
    """A job function registered with a worker, with its per-function options.

    ``None`` options fall back to the worker's settings.
    """

    name: str
    fn: Callable[..., Any]  # the job function: ``async def`` or plain ``def``
    timeout: float | None = None
    max_tries: int | None = None
    keep_result: float | None = None
    keep_result_forever: bool | None = None
    executor: Executor = "loop"

    @property
    def is_async(self) -> bool:
        """True for ``async def`` functions."""
        return inspect.iscoroutinefunction(self.fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function itself (handy in tests)."""
        return self.fn(*args, **kwargs)


def _seconds(value: float | timedelta | None, name: str, *, zero: bool) -> float | None:
    """An option's duration in seconds (None stays None); InvalidArgument if it is wrong."""
    if value is None:
        return None
    number = seconds(value, name)
    if number < 0 or (number == 0 and not zero):
        least = "0" if zero else "more than 0"
        raise InvalidArgument(f"{name} must be {least} seconds, not {value!r}")
    return number


def func(
    fn: Callable[..., Any] | Function,
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

    Bad options are an :class:`~jobwire.InvalidArgument` naming the option.
    """
    if isinstance(fn, Function):
        fn = fn.fn
    if not callable(fn):
        raise InvalidArgument(f"a job function must be callable, not {fn!r:.40}")
    is_async = inspect.iscoroutinefunction(fn)
    chosen: Executor = executor or ("loop" if is_async else "thread")
    if chosen not in _EXECUTORS:
        raise InvalidArgument(f"executor must be one of {_EXECUTORS}, not {chosen!r}")
    if chosen == "loop" and not is_async:
        raise InvalidArgument(f"{fn!r} is not async: use executor='thread' or 'process'")
    if chosen != "loop" and is_async:
        raise InvalidArgument(f"{fn!r} is async: it runs on the loop (executor='loop')")
    if max_tries is not None and (type(max_tries) is not int or max_tries < 1):
        raise InvalidArgument(f"max_tries must be a whole number from 1, not {max_tries!r:.40}")
    if name is None:
        name = getattr(fn, "__name__", None)
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"a job function's name must be a non-empty string, not {name!r:.40}")
    return Function(
        name=name,
        fn=fn,
        timeout=_seconds(timeout, "timeout", zero=False),
        max_tries=max_tries,
        keep_result=_seconds(keep_result, "keep_result", zero=True),
        keep_result_forever=keep_result_forever,
        executor=chosen,
    )
