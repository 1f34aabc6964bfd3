"""Worker settings for the chaos soak: ``jobwire worker tests.reliability.soak_settings.Settings``.

The job appends one line when it starts and one when it ends (job id, try, worker pid,
time) to a file, with single O_APPEND writes, so every effect is counted outside Redis.
"""

from __future__ import annotations

import os
import time
from typing import Any


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def effect(ctx: dict[str, Any], path: str, seconds: float) -> str:
    job = f"{ctx['job_id']} {ctx['job_try']} {os.getpid()}"
    _append(path, f"start {job} {time.time():.6f}\n")
    time.sleep(seconds)
    _append(path, f"end {job} {time.time():.6f}\n")
    return str(ctx["job_id"])


class Settings:
    functions = (effect,)
    redis_settings = os.environ.get("REDIS_URL")
    max_jobs = 50
    thread_workers = 50
    lease = 2.0
    max_tries = 100  # kills must not use up a job's tries: this soak counts losses
    health_check_interval = 1
