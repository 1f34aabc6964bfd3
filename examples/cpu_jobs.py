"""CPU-bound jobs in the worker's process pool, using every core.

Run: ``REDIS_URL=redis://localhost:6379/0 python examples/cpu_jobs.py``. It enqueues a few
jobs with the blocking client, then runs a worker in burst mode (it exits once the queue is
empty) and prints each result with the CPU time it took and the overall parallelism.
"""

from __future__ import annotations

import os
import time
from typing import Any

import jobwire
from jobwire.worker import Worker, func


def count_primes(ctx: dict[str, Any], limit: int) -> dict[str, Any]:
    """Pure-Python CPU work: threads would serialize on the GIL, processes do not."""
    start = time.process_time()
    count = sum(1 for n in range(2, limit) if all(n % d for d in range(2, int(n**0.5) + 1)))
    return {
        "limit": limit,
        "primes": count,
        "cpu_s": time.process_time() - start,
        "pid": os.getpid(),
    }


def main() -> None:
    url = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
    client = jobwire.Client.from_url(url, queue_name="cpu")
    jobs = [client.enqueue("count_primes", 150_000 + i) for i in range(os.cpu_count() or 2)]
    worker = Worker(
        [func(count_primes, executor="process", timeout=120)],
        redis_settings=url,
        queue_name="cpu",
        burst=True,
        process_workers=os.cpu_count(),
    )
    started = time.monotonic()
    worker.run()
    wall = time.monotonic() - started
    cpu = 0.0
    for job in jobs:
        result = job.result(timeout=10)
        cpu += result["cpu_s"]
        print(
            f"{result['primes']} primes below {result['limit']} in {result['cpu_s']:.2f}s CPU "
            f"(process {result['pid']})"
        )
    print(f"{len(jobs)} jobs, {cpu:.2f}s CPU in {wall:.2f}s wall: parallelism {cpu / wall:.2f}")
    client.close()


if __name__ == "__main__":
    main()
