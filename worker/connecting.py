"""Waiting for Redis at startup: a worker started before its Redis waits for it.

While Redis cannot be reached the worker logs one line per attempt and tries again after
0.5 s, 1 s, 2 s ... up to 10 s, until it connects or is stopped. Refused credentials
(:class:`~jobwire.RedisAuthError`) and any other error are raised at once: waiting cannot
fix them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from jobwire.errors import RedisUnavailable
from jobwire.settings import RedisSettings

__all__ = ["FIRST_DELAY", "MAX_DELAY", "server_address", "wait_for_redis"]

logger = logging.getLogger("jobwire.worker")
FIRST_DELAY = 0.5
MAX_DELAY = 10.0


def server_address(settings: RedisSettings) -> str:
    """``host:port`` of the server (the Sentinels, or a socket path), without credentials."""
    if settings.sentinels:
        return ",".join(f"{h}:{p}" for h, p in settings.sentinels)
    parts = urlsplit(settings.safe_url())
    return parts.netloc or parts.path or settings.safe_url()


async def wait_for_redis(
    probe: Callable[[], Awaitable[object]], stopped: asyncio.Event, where: str
) -> bool:
    """Run ``probe`` until it succeeds (True) or ``stopped`` is set (False).

    Only :class:`~jobwire.RedisUnavailable` is waited out; a stop interrupts an attempt in
    flight as well as the pause between attempts.
    """
    delay = FIRST_DELAY
    while not stopped.is_set():
        attempt = asyncio.ensure_future(probe())
        stop = asyncio.ensure_future(stopped.wait())
        try:
            await asyncio.wait({attempt, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not attempt.done():  # stopped while connecting
            attempt.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(attempt, 1.0)
            return False
        try:
            attempt.result()
            return True
        except RedisUnavailable as exc:
            reason = str(exc.__cause__ or exc).strip() or type(exc).__name__
            logger.warning(
                "Redis at %s is unreachable (%s); trying again in %.1fs", where, reason, delay
            )
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stopped.wait(), delay)
        delay = min(delay * 2, MAX_DELAY)
    return False
