"""jobwire's retry policies for redis-py.

Refused credentials are never retried, and a closed client's calls are refused (those in
flight included) rather than reconnected.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio.retry
import redis.retry

from .errors import ClientClosed
from .protocol import is_auth_failure

__all__ = ["AsyncRetry", "SyncRetry", "close_retries"]

T = TypeVar("T")


def _retryable(
    is_retryable: Callable[[Exception], bool] | None, closed: threading.Event
) -> Callable[[Exception], bool]:
    def retryable(error: Exception) -> bool:
        if is_auth_failure(error) or closed.is_set():
            return False  # refused credentials stay refused; a closed client stays closed
        return is_retryable is None or is_retryable(error)

    return retryable


class _Closing:
    """What jobwire's retry policies share: the client's closed flag, in every copy.

    redis-py gives each connection a deep copy of the client's retry policy; the flag is
    the one object the copies share, so that ``close()`` reaches calls in flight on any
    of them: a call failing after it (``close()`` shut its socket) is not retried but
    raises :class:`~jobwire.ClientClosed`, and no call starts on a closed client.
    """

    closed: threading.Event

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        memo[id(self.closed)] = self.closed  # the one thing not copied
        copied = object.__new__(type(self))
        memo[id(self)] = copied
        copied.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return copied

    def close(self) -> None:
        """Refuse every call from now on (and retry none in flight)."""
        self.closed.set()

    def _refused(self, cause: Exception | None = None) -> ClientClosed:
        error = ClientClosed()
        error.__cause__ = cause
        return error


class SyncRetry(_Closing, redis.retry.Retry):
    """redis-py's retry policy, except that refused credentials are never retried.

    A closed client's calls are refused (see :class:`_Closing`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = threading.Event()

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[[Exception], Any] | Callable[[Exception, int], Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        """Run ``do``, retrying what redis-py retries but an authentication failure."""
        if self.closed.is_set():
            raise self._refused()
        try:
            return super().call_with_retry(
                do, fail, _retryable(is_retryable, self.closed), with_failure_count
            )
        except Exception as exc:
            if self.closed.is_set():
                raise self._refused(exc) from exc
            raise


class AsyncRetry(_Closing, redis.asyncio.retry.Retry):
    """The asyncio twin of :class:`SyncRetry`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = threading.Event()

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[[Exception], Any] | Callable[[Exception, int], Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        """Run ``do``, retrying what redis-py retries but an authentication failure."""
        if self.closed.is_set():
            raise self._refused()
        try:
            return await super().call_with_retry(
                do, fail, _retryable(is_retryable, self.closed), with_failure_count
            )
        except Exception as exc:
            if self.closed.is_set():
                raise self._refused(exc) from exc
            raise


def close_retries(client: Any) -> None:
    """Refuse the calls of a redis-py client jobwire built (see :class:`_Closing`)."""
    get = getattr(client, "get_retry", None)
    # a cluster client keeps its own (the nodes' connections are built without one)
    for retry in (get() if get is not None else None, getattr(client, "retry", None)):
        if isinstance(retry, _Closing):
            retry.close()
