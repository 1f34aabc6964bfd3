"""Settings used by the CLI tests."""

from __future__ import annotations

import os
from typing import Any


async def double(ctx: dict[str, Any], x: int) -> int:
    return 2 * x


class Settings:
    functions = (double,)
    redis_settings = os.environ.get("REDIS_URL")
    health_check_interval = 1
