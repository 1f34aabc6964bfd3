"""Jobs and worker settings for the benchmarks (``jobwire worker bench_jobs.Settings``).

Completion is observed without Redis: after ``BENCH_TOTAL`` jobs the worker writes the time
to ``BENCH_DONE``; the latency job appends its delay to ``BENCH_LATENCY``.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any, ClassVar

from jobwire.worker import func

_done = 0
_total = int(os.environ.get("BENCH_TOTAL", "0"))  # read once: a no-op job does nothing else


def _tick() -> None:
    global _done
    _done += 1
    if _done == _total:
        Path(os.environ["BENCH_DONE"]).write_text(repr(time.time()))


def _first() -> None:
    """Note when the first job started: start-up and throughput can then be told apart."""
    if _done == 0:
        first = Path(os.environ["BENCH_DONE"] + ".first")
        if not first.exists():
            first.write_text(repr(time.time()))


async def noop(ctx: dict[str, Any]) -> None:
    _first()
    _tick()


async def io(ctx: dict[str, Any]) -> None:
    _first()
    await asyncio.sleep(0.02)
    _tick()


async def latency(ctx: dict[str, Any], sent: float) -> None:
    delay = time.time() - sent
    with Path(os.environ["BENCH_LATENCY"]).open("a") as f:
        f.write(f"{delay}\n")


def cpu(ctx: dict[str, Any], seconds: float) -> float:
    """Pure-Python CPU work for about ``seconds`` of this thread's CPU; returns CPU used."""
    start = time.thread_time()
    while time.thread_time() - start < seconds:
        sum(i * i for i in range(500))
    return time.thread_time() - start


class Settings:
    """Loop jobs only: no process pool competing for the cores."""

    functions = (noop, io, latency)
    redis_settings = os.environ.get("REDIS_URL")
    max_jobs = int(os.environ.get("BENCH_MAX_JOBS", "10"))
    events = os.environ.get("BENCH_EVENTS", "1") != "0"  # events and stats (run.py --no-events)


class CpuSettings(Settings):
    functions = (
        func(cpu, name="cpu_thread", executor="thread"),
        func(cpu, name="cpu_process", executor="process"),
    )
    thread_workers = 2
    process_workers = 2


class ScalingSettings(Settings):
    """No-op jobs for the scaling runs: ``BENCH_PARTITIONS`` partitions of ``default``."""

    functions = (noop,)
    partitions: ClassVar = {"default": int(os.environ.get("BENCH_PARTITIONS", "1"))}
