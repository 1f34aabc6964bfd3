"""Jobs declared with ``@jobwire.task``, and settings classes of them, right and wrong.

``jobwire worker tests.worker.task_jobs.Settings`` runs them; the other classes hold the
mistakes the worker refuses.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from jobwire import Backoff, task

URL = os.environ.get("REDIS_URL")


@task(max_tries=4, retry_on=(ConnectionError,), backoff=Backoff(base=0.2, jitter="none"))
async def connect(ctx: dict[str, Any], succeed_on: int) -> int:
    """Refused (ConnectionError) until try ``succeed_on``; returns the try that worked."""
    if ctx["job_try"] < succeed_on:
        raise ConnectionError(f"try {ctx['job_try']} refused")
    return int(ctx["job_try"])


@task(max_tries=5, retry_on=ConnectionError)
async def bad_value(ctx: dict[str, Any]) -> None:
    """Fails with an exception it does not retry."""
    raise ValueError("not worth retrying")


@task(timeout=0.3, max_tries=1)
async def slow(ctx: dict[str, Any], seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


@task(executor="process")
def square(ctx: dict[str, Any], x: int) -> int:
    return x * x


@task
async def greet(ctx: dict[str, Any], name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


ALL = (connect, bad_value, slow, square, greet)


class Settings:
    functions = ALL
    redis_url = URL
    health_check_interval = 1


class Typos:
    fuctions = ALL
    max_job = 3
    job_timout = 10
    redis_url = URL


class NoFunctions:
    redis_url = URL
    max_jobs = 3
