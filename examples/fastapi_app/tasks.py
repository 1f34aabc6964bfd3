"""The jobs of the FastAPI app: ``jobwire worker tasks.WorkerSettings`` (from this directory)."""

from __future__ import annotations

import asyncio
import os
from typing import Any


async def resize_image(ctx: dict[str, Any], url: str, width: int = 256) -> dict[str, Any]:
    """An async job: runs on the worker's event loop."""
    await asyncio.sleep(0.01)  # a real app would fetch and resize the image here
    return {"url": url, "width": width, "thumbnail": f"{url}?w={width}"}


class WorkerSettings:
    functions = (resize_image,)
    redis_settings = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
