"""Settings used by the CLI tests."""

from __future__ import annotations

import os
from typing import Any

from jobwire.worker import Retry


async def double(ctx: dict[str, Any], x: int) -> int:
    return 2 * x


async def fail(ctx: dict[str, Any], message: str) -> None:
    raise ValueError(message)


async def flaky(ctx: dict[str, Any]) -> str:
    if ctx["job_try"] < 2:
        raise Retry(defer=0.01)
    return f"succeeded on try {ctx['job_try']}"


class Settings:
    functions = (double, fail, flaky)
    redis_settings = os.environ.get("REDIS_URL")
    health_check_interval = 1


class Named(Settings):
    name = "named"
