"""Worker settings for the robustness tests (``jobwire worker tests.worker.robust_settings.X``).

``CLOCK_SKEW`` (seconds) makes this process's clock wrong on purpose.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from jobwire.settings import RedisSettings
from jobwire.worker import func

from .jobs import record

if os.environ.get("CLOCK_SKEW"):
    _real_time = time.time
    _skew = float(os.environ["CLOCK_SKEW"])
    time.time = lambda: _real_time() + _skew  # a machine whose clock is off


async def double(ctx: dict[str, Any], x: int) -> int:
    return 2 * x


async def started_at(ctx: dict[str, Any]) -> float:
    return time.time()


async def block_the_loop(ctx: dict[str, Any], seconds: float) -> str:
    with open(os.environ["RECORD_FILE"], "a") as f:  # noqa: ASYNC230
        f.write(f"start {ctx['job_id']} {ctx['job_try']}\n")
    time.sleep(seconds)  # noqa: ASYNC251 - the mistake this guards against: blocking code in an async job
    return "done"


async def nap(ctx: dict[str, Any]) -> str:
    with open(os.environ["RECORD_FILE"], "a") as f:  # noqa: ASYNC230
        f.write(f"start {ctx['job_id']} {ctx['job_try']}\n")
    await asyncio.sleep(0.5)
    return "rested"


class Settings:
    functions = (double, started_at, func(block_the_loop, timeout=60), nap, func(record))
    redis_settings = os.environ.get("REDIS_URL")
    health_check_interval = 1
    max_jobs = 10


class ShortLease(Settings):
    """A 2-second lease, so that a test can block the loop past it in a few seconds."""

    lease = 2.0


async def _wedge_fetching(ctx: dict[str, Any]) -> None:
    from jobwire.worker.fetcher import Fetcher

    async def stuck(self: Any, q: Any) -> Any:
        await asyncio.Event().wait()  # a fetch that never returns (a bug, a hung call)

    Fetcher._take = stuck  # type: ignore[method-assign]


class Wedged(Settings):
    redis_settings = RedisSettings.from_url(
        os.environ.get("REDIS_URL", "redis://localhost:6379/0"), socket_timeout=2
    )
    on_startup = _wedge_fetching


async def elsewhere(ctx: dict[str, Any]) -> None:
    """A function only workers of ``Elsewhere`` have."""


class Elsewhere(Settings):
    functions = (*Settings.functions, elsewhere)
