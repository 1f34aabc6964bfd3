"""What a worker runs: registered functions, their options, and ``Retry``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, Concatenate

from typing_extensions import ParamSpec, TypeVar

from jobwire import defaults
from jobwire.models import seconds
from jobwire.tasks import Backoff, Executor, Task, task

__all__ = [
    "DEFAULT_MAX_TRIES",
    "Backoff",
    "Executor",
    "Function",
    "Retry",
    "func",
]

P = ParamSpec("P")
R = TypeVar("R")
#: How many times a job may start when neither its function nor the worker says otherwise.
DEFAULT_MAX_TRIES = defaults.MAX_TRIES


class Retry(Exception):
    """Raise inside a job to run it again later.

    ``defer`` is the delay (seconds or timedelta); without it the worker waits by the
    function's ``backoff``, else ``retry_backoff`` seconds times the try number.
    ``max_tries`` still applies. A delay that is no duration is an
    :class:`~jobwire.InvalidArgument` (the job fails with it).
    """

    def __init__(self, defer: float | timedelta | None = None) -> None:
        delay = None if defer is None else max(0.0, seconds(defer, "Retry's defer"))
        super().__init__(f"retry requested (defer={delay})")
        self.defer = delay

    def __reduce__(self) -> tuple[type[Retry], tuple[float | None]]:
        # rebuilt from ``defer`` (not from the message) when it crosses a process boundary
        return (Retry, (self.defer,))


#: A job function registered with a worker, with its per-function options: a task.
Function = Task


def func(
    fn: Callable[Concatenate[Any, P], R],
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
) -> Task[P, R]:
    """Register a job function with options: :func:`jobwire.task` under arq's name.

    Every function receives the job context first, as in arq. Given a task, the options
    not given keep the task's. See :func:`jobwire.task` for the options; bad ones are an
    :class:`~jobwire.InvalidArgument` naming the option.
    """
    return task(
        fn, name=name, timeout=timeout, max_tries=max_tries, keep_result=keep_result,
        keep_result_forever=keep_result_forever, executor=executor, retry_on=retry_on,
        backoff=backoff, queue_name=queue_name,
    )  # fmt: skip
