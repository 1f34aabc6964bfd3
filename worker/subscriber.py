"""The abort listener: a client's ``abort ID`` notice stops a running job at once.

Notices come over pub/sub; lease renewal also reports abort requests, so a notice lost
while the listener reconnects still aborts the job within a renewal interval.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio
import redis.exceptions

from jobwire.errors import RedisUnavailable
from jobwire.protocol import translate_error

from .supervisor import LoopState

__all__ = ["AbortListener"]


class AbortListener:
    """Subscribes to the queues' event channels and aborts the jobs they name."""

    def __init__(self, conn: redis.asyncio.Redis, channels: Sequence[str]) -> None:
        self._conn = conn
        self._channels = list(channels)
        self._pubsub: Any = None  # redis-py's PubSub is untyped

    async def subscribe(self) -> None:
        """Subscribe now (the worker does so before its first job can start)."""
        pubsub: Any = self._conn.pubsub()
        try:
            await pubsub.subscribe(*self._channels)
        except redis.exceptions.RedisError as exc:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise _translated(exc, "cannot subscribe to abort notices") from exc
        self._pubsub = pubsub

    async def listen(self, state: LoopState, abort: Callable[[str], object]) -> None:
        """Abort jobs as notices arrive (supervised: a lost connection raises, then resumes)."""
        try:
            if self._pubsub is None:
                await self.subscribe()
            state.waiting()
            async for message in self._pubsub.listen():
                data = message.get("data")
                if message.get("type") == "message" and isinstance(data, bytes):
                    kind, _, job_id = data.decode("utf-8", "replace").partition(" ")
                    if kind == "abort":
                        abort(job_id)
                state.waiting()
        except redis.exceptions.RedisError as exc:
            raise _translated(exc, "abort listener lost Redis") from exc
        finally:
            if self._pubsub is not None:
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
                self._pubsub = None


def _translated(exc: redis.exceptions.RedisError, what: str) -> BaseException:
    """The jobwire error for ``exc`` (refused credentials stay a RedisAuthError)."""
    error = translate_error(exc)
    if isinstance(error, RedisUnavailable):
        return RedisUnavailable(f"{what}: {exc}")
    return error
