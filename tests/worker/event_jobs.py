"""Jobs and settings for the event, progress and stats tests (importable by child processes)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from jobwire.worker import func, progress


def _chatter(ctx: dict[str, Any]) -> None:
    for i in range(500):  # a chatty job: coalesced, it must not flood Redis
        ctx["progress"](i / 1000, "warming up")
    progress(0.5, "half way")  # the module-level form, no ctx needed


async def progress_loop(ctx: dict[str, Any], gate: str) -> str:
    _chatter(ctx)
    while not Path(gate).exists():  # noqa: ASYNC110, ASYNC240 (a test's gate)
        await asyncio.sleep(0.01)
    return "done"


def progress_thread(ctx: dict[str, Any], gate: str) -> str:
    _chatter(ctx)
    while not Path(gate).exists():
        time.sleep(0.01)
    return "done"


def progress_process(ctx: dict[str, Any], gate: str) -> str:
    _chatter(ctx)
    while not Path(gate).exists():
        time.sleep(0.01)
    return "done"


PROGRESS_FUNCTIONS = [
    func(progress_loop),
    func(progress_thread),
    func(progress_process, executor="process"),
]


async def quick(ctx: dict[str, Any], x: int) -> int:
    return x


async def boom(ctx: dict[str, Any]) -> None:
    raise RuntimeError("boom")


class StatsSettings:
    """A burst worker: runs what is queued, then exits."""

    functions = (quick, boom)
    redis_settings = os.environ.get("REDIS_URL")
    burst = True
    max_tries = 1
