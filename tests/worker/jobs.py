"""Job functions the worker tests run, one family per executor (importable by child processes)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from jobwire.worker import Function, Retry, func


class JobError(ValueError):
    pass


async def ok_loop(ctx: dict[str, Any], x: int) -> int:
    return x * 2


def ok_thread(ctx: dict[str, Any], x: int) -> int:
    return x * 2


def ok_process(ctx: dict[str, Any], x: int) -> dict[str, Any]:
    return {"double": x * 2, "pid": os.getpid(), "job_id": ctx["job_id"], "try": ctx["job_try"]}


async def fail_loop(ctx: dict[str, Any]) -> None:
    raise JobError("loop failed")


def fail_thread(ctx: dict[str, Any]) -> None:
    raise JobError("thread failed")


def fail_process(ctx: dict[str, Any]) -> None:
    raise JobError("process failed")


async def slow_loop(ctx: dict[str, Any]) -> str:
    await asyncio.sleep(30)
    return "never"


def slow_thread(ctx: dict[str, Any]) -> str:
    # cooperative: returns as soon as the worker sets the abort flag (timeout or abort)
    deadline = time.monotonic() + 30
    while not ctx["aborted"].is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    return "stopped"


def slow_process(ctx: dict[str, Any]) -> str:
    time.sleep(30)
    return "never"


async def flaky_loop(ctx: dict[str, Any]) -> str:
    if ctx["job_try"] < 3:
        raise Retry(defer=0.1)
    return f"try {ctx['job_try']}"


def flaky_thread(ctx: dict[str, Any]) -> str:
    if ctx["job_try"] < 3:
        raise Retry(defer=0.1)
    return f"try {ctx['job_try']}"


def flaky_process(ctx: dict[str, Any]) -> str:
    if ctx["job_try"] < 3:
        raise Retry(defer=0.1)
    return f"try {ctx['job_try']}"


def burn(ctx: dict[str, Any], seconds: float) -> float:
    """Pure-Python CPU work for about ``seconds``; returns the CPU time its thread used."""
    start = time.thread_time()
    n = 0
    while time.thread_time() - start < seconds:
        n += sum(i * i for i in range(1000))
    return time.thread_time() - start


def burn_span(ctx: dict[str, Any], seconds: float) -> list[float]:
    """CPU work for about ``seconds`` of its process's CPU; returns [pid, start, end] (wall)."""
    start = time.time()
    burn(ctx, seconds)
    return [os.getpid(), start, time.time()]


def record(ctx: dict[str, Any], path: str, seconds: float = 0.0) -> str:
    """Append 'start' and 'end' lines to a file: effects counted outside Redis."""
    with Path(path).open("a") as f:
        f.write(f"start {ctx['job_id']} {ctx['job_try']} {os.getpid()}\n")
    time.sleep(seconds)
    with Path(path).open("a") as f:
        f.write(f"end {ctx['job_id']} {ctx['job_try']} {os.getpid()}\n")
    return ctx["job_id"]


EXECUTORS = ("loop", "thread", "process")


def all_functions(timeout: float = 0.5) -> list[Function]:
    functions = []
    for executor in EXECUTORS:
        functions += [
            func(globals()[f"{kind}_{executor}"], executor=executor)  # type: ignore[arg-type]
            for kind in ("ok", "fail", "flaky", "slow")
        ]
        functions.append(
            func(
                globals()[f"slow_{executor}"],
                name=f"timeout_{executor}",
                timeout=timeout,
                executor=executor,
            )  # type: ignore[arg-type]
        )
    functions += [func(burn, executor="process"), func(record)]
    return functions


def nap_process(ctx: dict[str, Any], seconds: float) -> str:
    time.sleep(seconds)
    return "rested"
