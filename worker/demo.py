"""``jobwire demo``: see jobwire work in a few seconds.

Uses ``$REDIS_URL`` if set; otherwise starts a throwaway ``redis-server`` (no persistence,
a free loopback port) and removes it afterwards. A worker runs in this process; jobs are
enqueued from the blocking and the asyncio client, and each result is printed as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import jobwire

from .functions import Function, Retry, func
from .runner import Worker


async def greet(ctx: dict[str, Any], name: str) -> str:
    """A JSON job on the event loop."""
    return f"hello, {name} (job {ctx['job_id'][:8]}, try {ctx['job_try']})"


def word_count(ctx: dict[str, Any], text: bytes) -> dict[str, int]:
    """A msgpack job (its argument is bytes) in the thread pool."""
    words = text.decode().split()
    return {"words": len(words), "distinct": len(set(words))}


def count_primes(ctx: dict[str, Any], limit: int) -> int:
    """A CPU-bound job in the process pool."""
    return sum(1 for n in range(2, limit) if all(n % d for d in range(2, int(n**0.5) + 1)))


async def flaky(ctx: dict[str, Any]) -> str:
    """Fails twice, then succeeds: Retry re-queues it with a short delay."""
    if ctx["job_try"] < 3:
        raise Retry(defer=0.2)
    return f"succeeded on try {ctx['job_try']}"


FUNCTIONS: list[Function | Callable[..., Any]] = [
    greet,
    word_count,
    func(count_primes, executor="process"),
    flaky,
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    url = os.environ.get("REDIS_URL")
    if url:
        settings = jobwire.RedisSettings.from_url(url)
        print(f"using REDIS_URL={settings.safe_url()}")
        with jobwire.Client(settings=settings) as client:
            client.ping()  # a demo does not wait for a Redis that is not there: exit 3
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            "jobwire demo: REDIS_URL is not set and redis-server is not installed "
            "(apt-get install redis-server, or brew install redis)"
        )
    port = _free_port()
    data = tempfile.mkdtemp(prefix="jobwire-demo-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            data,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("jobwire demo: redis-server did not start")
            time.sleep(0.02)
        print(f"REDIS_URL is not set: started a throwaway redis-server on 127.0.0.1:{port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)
        print("stopped the throwaway redis-server")


async def _demo(url: str) -> None:
    worker = Worker(
        FUNCTIONS,
        redis_settings=url,
        handle_signals=False,
        process_workers=2,
        prefix="jobwire-demo",
    )
    await worker.startup()
    print(f"started worker {worker.name} with {', '.join(worker.functions)}\n")
    try:
        sync_client = jobwire.Client.from_url(url, prefix="jobwire-demo")

        def enqueue_blocking() -> list[Any]:
            return [
                ("sync  greet (json)", sync_client.enqueue("greet", "Django")),
                (
                    "sync  word_count (msgpack)",
                    sync_client.enqueue("word_count", b"to be or not to be", _serializer="msgpack"),
                ),
                ("sync  count_primes (process)", sync_client.enqueue("count_primes", 30_000)),
            ]

        async with jobwire.AsyncClient.from_url(url, prefix="jobwire-demo") as client:
            jobs = await asyncio.to_thread(enqueue_blocking)
            jobs += [
                ("async greet (json)", await client.enqueue("greet", "aiohttp")),
                ("async flaky (retries)", await client.enqueue("flaky")),
                ("async greet (deferred 1s)", await client.enqueue("greet", "later", _defer_by=1)),
            ]
            started = time.monotonic()

            async def report(label: str, job: Any) -> None:
                waiter = job.result if isinstance(job, jobwire.AsyncJob) else None
                if waiter is not None:
                    value = await waiter(timeout=30)
                else:
                    value = await asyncio.to_thread(job.result, 30)
                print(f"{time.monotonic() - started:5.2f}s  {label:<30} -> {value!r}")

            await asyncio.gather(*(report(label, job) for label, job in jobs))
            history = await client.job(jobs[4][1].job_id).results()
            print(f"\nflaky's history, newest first: {[r.outcome for r in history]}")
        sync_client.close()
    finally:
        worker.stop()
        await worker.shutdown()
    # leave nothing behind, also on a Redis that is not ours
    async with jobwire.AsyncClient.from_url(url) as cleaner:
        keys = [key async for key in cleaner.redis.scan_iter(match="jobwire-demo:*")]
        if keys:
            await cleaner.redis.delete(*keys)


def main() -> int:
    """Run the demo; return the exit status."""
    with _redis() as url:
        asyncio.run(_demo(url))
    print("done: see README.md for the worker command and the examples")
    return 0
