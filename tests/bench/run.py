"""jobwire benchmarks: every workload of the brief against a plain redis-py baseline.

    python tests/bench/run.py              # full run (a few minutes)
    python tests/bench/run.py --quick      # smaller counts, under a minute (CI smoke test)
    python tests/bench/run.py --no-events  # the same with lifecycle events and stats off
    python tests/bench/run.py --only events  # drain_noop and latency, events off vs on

Starts its own redis-server on a free port (never 6379) and removes it afterwards. Each
workload runs ``--repeat`` times (default 3); the table shows the median with min-max and,
where there is one, the ratio to the baseline measured in the same run. Results are also
appended as JSON lines to ``--json`` (default ``tests/bench/results.jsonl``).
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import redis
import redis.asyncio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root, for tests.helpers.redis_harness

import scaling  # noqa: E402  (tests/bench/scaling.py: --only processes cluster)

import jobwire  # noqa: E402
from jobwire import JobSpec  # noqa: E402
from tests.helpers.redis_harness import RedisServer  # noqa: E402
from tests.helpers.support import fetch, finish  # noqa: E402


@dataclass
class Row:
    workload: str
    unit: str
    values: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    bar: str = ""
    higher_is_better: bool = True
    note: str = ""

    def cell(self, values: list[float]) -> str:
        med = statistics.median(values)
        return f"{med:,.1f} ({min(values):,.1f}–{max(values):,.1f})"

    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        ours, base = statistics.median(self.values), statistics.median(self.baseline)
        return ours / base if self.higher_is_better else base / ours


@dataclass
class Bench:
    url: str
    server: RedisServer
    quick: bool
    repeat: int
    events: bool = True  # lifecycle events and stats written by workers and clients
    rows: list[Row] = field(default_factory=list)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="jobwire-bench-")))

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def flush(self) -> None:
        with redis.Redis.from_url(self.url) as r:
            r.flushall()

    def row(self, workload: str, unit: str, **kw: Any) -> Row:
        row = Row(workload, unit, **kw)
        self.rows.append(row)
        return row


# ------------------------------------------------------------------------------ payloads


def payload(job_id: str) -> bytes:
    """What the baseline stores per job: the same envelope jobwire writes for a no-arg job."""
    return orjson.dumps(
        {
            "v": "1.0",
            "fmt": "json",
            "id": job_id,
            "function": "noop",
            "queue": "default",
            "try": 1,
            "enqueued_ms": int(time.time() * 1000),
            "args": [],
            "kwargs": {},
        }
    )


def rate(count: int, seconds: float) -> float:
    return count / seconds


# ------------------------------------------------------------------------------ enqueue


def baseline_enqueue_sync(url: str, count: int) -> float:
    r = redis.Redis.from_url(url)
    started = time.perf_counter()
    for _ in range(count):
        job_id = uuid.uuid4().hex
        pipe = r.pipeline(transaction=False)
        pipe.set(f"base:job:{job_id}", payload(job_id))
        pipe.lpush("base:queue", job_id)
        pipe.execute()
    elapsed = time.perf_counter() - started
    r.close()
    return rate(count, elapsed)


EVENTS = {"events": True}  # the clients' setting (main() sets it from --no-events)


def jobwire_enqueue_sync(url: str, count: int) -> float:
    client = jobwire.Client.from_url(url, **EVENTS)
    client.enqueue("noop")  # connect and load the script outside the measurement
    started = time.perf_counter()
    for _ in range(count):
        client.enqueue("noop")
    elapsed = time.perf_counter() - started
    client.close()
    return rate(count, elapsed)


async def baseline_enqueue_async(url: str, count: int) -> float:
    r = redis.asyncio.Redis.from_url(url)
    await r.ping()
    started = time.perf_counter()
    for _ in range(count):
        job_id = uuid.uuid4().hex
        pipe = r.pipeline(transaction=False)
        pipe.set(f"base:job:{job_id}", payload(job_id))
        pipe.lpush("base:queue", job_id)
        await pipe.execute()
    elapsed = time.perf_counter() - started
    await r.aclose()
    return rate(count, elapsed)


async def jobwire_enqueue_async(url: str, count: int) -> float:
    client = jobwire.AsyncClient.from_url(url, **EVENTS)
    await client.enqueue("noop")
    started = time.perf_counter()
    for _ in range(count):
        await client.enqueue("noop")
    elapsed = time.perf_counter() - started
    await client.close()
    return rate(count, elapsed)


def jobwire_enqueue_many(url: str, count: int, batch: int = 1000) -> float:
    client = jobwire.Client.from_url(url, **EVENTS)
    client.enqueue("noop")
    started = time.perf_counter()
    for start in range(0, count, batch):
        client.enqueue_many([JobSpec("noop") for _ in range(min(batch, count - start))])
    elapsed = time.perf_counter() - started
    client.close()
    return rate(count, elapsed)


def bench_enqueue(b: Bench) -> None:
    count = b.n(5000, 1000)
    sync = b.row("enqueue (sync)", "jobs/s", bar="≥ 0.9 × baseline")
    asyn = b.row("enqueue (async)", "jobs/s", bar="≥ 0.9 × baseline")
    many = b.row("enqueue_many", "jobs/s", bar="≥ 50,000 jobs/s")
    for _ in range(b.repeat):
        b.flush()
        sync.baseline.append(baseline_enqueue_sync(b.url, count))
        sync.values.append(jobwire_enqueue_sync(b.url, count))
        b.flush()
        asyn.baseline.append(asyncio.run(baseline_enqueue_async(b.url, count)))
        asyn.values.append(asyncio.run(jobwire_enqueue_async(b.url, count)))
        b.flush()
        many.values.append(jobwire_enqueue_many(b.url, b.n(50_000, 10_000)))


def jobwire_enqueue_threads(url: str, count: int, threads: int, coalesce: bool = True) -> float:
    """``threads`` threads sharing one Client, each enqueuing one job at a time."""
    client = jobwire.Client.from_url(url, coalesce=coalesce, **EVENTS)
    client.enqueue("noop")
    each = count // threads
    start = threading.Barrier(threads + 1)

    def produce() -> None:
        start.wait()
        for _ in range(each):
            client.enqueue("noop")

    running = [threading.Thread(target=produce) for _ in range(threads)]
    for thread in running:
        thread.start()
    start.wait()
    started = time.perf_counter()
    for thread in running:
        thread.join()
    elapsed = time.perf_counter() - started
    client.close()
    return rate(each * threads, elapsed)


async def jobwire_enqueue_tasks(url: str, count: int, tasks: int, coalesce: bool = True) -> float:
    """``tasks`` asyncio tasks sharing one AsyncClient, each enqueuing one job at a time."""
    client = jobwire.AsyncClient.from_url(url, coalesce=coalesce, **EVENTS)
    await client.enqueue("noop")
    each = count // tasks

    async def produce() -> None:
        for _ in range(each):
            await client.enqueue("noop")

    started = time.perf_counter()
    await asyncio.gather(*(produce() for _ in range(tasks)))
    elapsed = time.perf_counter() - started
    await client.close()
    return rate(each * tasks, elapsed)


def bench_enqueue_concurrent(b: Bench) -> None:
    """Many callers sharing one client (coalesced enqueues) vs one caller, in the same run."""
    count = b.n(5000, 1000)
    tasks = b.row("enqueue, 100 async tasks", "jobs/s", bar="≥ 4 × one task")
    threads = b.row("enqueue, 16 threads", "jobs/s", bar="≥ 2 × one thread")
    apart: dict[str, list[float]] = {"tasks": [], "threads": []}
    for _ in range(b.repeat):
        b.flush()
        tasks.baseline.append(asyncio.run(jobwire_enqueue_async(b.url, count)))
        tasks.values.append(asyncio.run(jobwire_enqueue_tasks(b.url, count, 100)))
        apart["tasks"].append(asyncio.run(jobwire_enqueue_tasks(b.url, count, 100, False)))
        b.flush()
        threads.baseline.append(jobwire_enqueue_sync(b.url, count))
        threads.values.append(jobwire_enqueue_threads(b.url, count, 16))
        apart["threads"].append(jobwire_enqueue_threads(b.url, count, 16, False))
    for row, key, one in ((tasks, "tasks", "one task"), (threads, "threads", "one thread")):
        row.note = (
            f"baseline: the same client, {one} at a time; "
            f"coalesce=False: {statistics.median(apart[key]):,.0f} jobs/s"
        )


# ------------------------------------------------------------------------------ draining

BASELINE_DRAIN = """
import asyncio, os, sys, time
from pathlib import Path
import redis.asyncio

async def main():
    r = redis.asyncio.Redis.from_url(os.environ["REDIS_URL"])
    async def task():
        while True:
            job_id = await r.rpop("base:queue")            # round trip 1: fetch and delete
            if job_id is None:
                return
            data = await r.getdel(b"base:job:" + job_id)   # (same round trip in a script)
            await r.set(b"base:result:" + job_id, data, ex=3600)   # round trip 2: result
    await asyncio.gather(*(task() for _ in range(10)))
    Path(os.environ["BENCH_DONE"]).write_text(repr(time.time()))
    await r.aclose()

asyncio.run(main())
"""

# the baseline's fetch-and-delete is one round trip: a pipeline of RPOP + GETDEL is not
# possible (GETDEL needs RPOP's answer), so it is a tiny Lua script, loaded once.
BASELINE_DRAIN = BASELINE_DRAIN.replace(
    """            job_id = await r.rpop("base:queue")            # round trip 1: fetch and delete
            if job_id is None:
                return
            data = await r.getdel(b"base:job:" + job_id)   # (same round trip in a script)""",
    """            got = await take(keys=["base:queue"])          # round trip 1: fetch and delete
            if got is None:
                return
            job_id, data = got""",
).replace(
    "    async def task():",
    """    take = r.register_script(
        "local id = redis.call('RPOP', KEYS[1]) "
        "if not id then return nil end "
        "return {id, redis.call('GETDEL', 'base:job:' .. id)}")
    await take(keys=["base:none"])
    async def task():""",
)


def wait_file(path: Path, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout}s")
        time.sleep(0.005)
    time.sleep(0.01)
    return float(path.read_text())


def spawn_worker(
    b: Bench,
    done: Path,
    total: int,
    max_jobs: int,
    settings: str = "Settings",
    events: bool | None = None,
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "BENCH_EVENTS": "1" if (b.events if events is None else events) else "0",
        "REDIS_URL": b.url,
        "BENCH_DONE": str(done),
        "BENCH_TOTAL": str(total),
        "BENCH_MAX_JOBS": str(max_jobs),
        "BENCH_LATENCY": str(b.tmp / "latency"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "jobwire", "worker", f"bench_jobs.{settings}"],
        cwd=HERE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(b.tmp / "worker.log").open("ab"),
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def drain_once(
    b: Bench,
    function: str,
    count: int,
    max_jobs: int,
    from_first_job: bool = False,
    events: bool | None = None,
) -> float:
    b.flush()
    events = b.events if events is None else events
    with jobwire.Client.from_url(b.url, events=events) as client:
        for start in range(0, count, 1000):
            client.enqueue_many([JobSpec(function) for _ in range(min(1000, count - start))])
    done = b.tmp / f"done-{uuid.uuid4().hex}"
    started = time.time()
    proc = spawn_worker(b, done, count, max_jobs, events=events)
    try:
        finished = wait_file(done, 300)
    finally:
        stop(proc)
    if from_first_job:  # steady-state throughput, without the worker's start-up
        started = float(Path(f"{done}.first").read_text())
    return rate(count, finished - started)


def baseline_drain_once(b: Bench, count: int) -> float:
    b.flush()
    with redis.Redis.from_url(b.url) as r:
        for start in range(0, count, 1000):
            pipe = r.pipeline(transaction=False)
            for _ in range(min(1000, count - start)):
                job_id = uuid.uuid4().hex
                pipe.set(f"base:job:{job_id}", payload(job_id))
                pipe.lpush("base:queue", job_id)
            pipe.execute()
    done = b.tmp / f"done-{uuid.uuid4().hex}"
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-c", BASELINE_DRAIN],
        env={**os.environ, "REDIS_URL": b.url, "BENCH_DONE": str(done)},
    )
    try:
        finished = wait_file(done, 300)
    finally:
        proc.wait(30)
    return rate(count, finished - started)


def bench_drain(b: Bench) -> None:
    count = b.n(5000, 1000)
    row = b.row(
        "drain_noop",
        "jobs/s",
        bar="≥ 1.0 × baseline",
        note="spawn of the worker process to last completion, both sides",
    )
    io = b.row(
        "drain_io",
        "jobs/s",
        bar="≥ 3,000 jobs/s (ideal 5,000)",
        note="1,000 jobs sleeping 20 ms, max_jobs=100; first job start to last end",
    )
    for _ in range(b.repeat):
        row.baseline.append(baseline_drain_once(b, count))
        row.values.append(drain_once(b, "noop", count, 10))
        io.values.append(drain_once(b, "io", b.n(1000, 500), 100, from_first_job=True))


# ------------------------------------------------------------------------------ latency


def bench_latency(b: Bench) -> None:
    count = b.n(500, 100)
    p50 = b.row(
        "latency p50",
        "ms",
        bar="≤ 1.5 ms",
        higher_is_better=False,
        note="idle worker, 50 jobs/s, enqueue → job start",
    )
    p99 = b.row("latency p99", "ms", bar="≤ 5 ms", higher_is_better=False)
    for _ in range(b.repeat):
        low, high = latency_once(b, count)
        p50.values.append(low)
        p99.values.append(high)


def latency_once(b: Bench, count: int, events: bool | None = None) -> tuple[float, float]:
    """p50 and p99 (ms) from enqueue to job start, one worker, ``count`` jobs at 50/s."""
    events = b.events if events is None else events
    b.flush()
    path = b.tmp / "latency"
    path.unlink(missing_ok=True)
    proc = spawn_worker(b, b.tmp / "unused", -1, 10, events=events)
    try:
        with jobwire.Client.from_url(b.url, events=events) as client:
            client.enqueue("latency", time.time())  # wait for the worker to be up
            while not path.exists():
                time.sleep(0.01)
            path.unlink()
            for _ in range(count):
                client.enqueue("latency", time.time())
                time.sleep(1 / 50)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if path.exists() and len(path.read_text().splitlines()) >= count:
                    break
                time.sleep(0.01)
    finally:
        stop(proc)
    delays = sorted(float(x) * 1000 for x in path.read_text().split())
    return delays[len(delays) // 2], delays[min(len(delays) - 1, int(len(delays) * 0.99))]


# ------------------------------------------------------------------------------ events


def bench_events(b: Bench) -> None:
    """drain_noop and latency with lifecycle events and stats off ("baseline") and on."""
    count = b.n(5000, 1000)
    drain = b.row(
        "drain_noop, events+stats on",
        "jobs/s",
        bar="≥ 0.9 × off",
        note="the baseline column is the same run with events=False (worker and client)",
    )
    p50 = b.row("latency p50, events on", "ms", bar="≤ 1.1 × off", higher_is_better=False)
    p99 = b.row("latency p99, events on", "ms", higher_is_better=False)
    for _ in range(b.repeat):  # interleaved, so that machine noise hits both alike
        drain.baseline.append(drain_once(b, "noop", count, 10, events=False))
        drain.values.append(drain_once(b, "noop", count, 10, events=True))
        for events, row50, row99 in ((False, "baseline", "baseline"), (True, "values", "values")):
            low, high = latency_once(b, b.n(500, 100), events=events)
            getattr(p50, row50).append(low)
            getattr(p99, row99).append(high)
    # what they cost in Redis, after a drain of ``count`` jobs (3 events each, under the cap)
    drain_once(b, "noop", count, 10, events=True)
    with redis.Redis.from_url(b.url) as r:
        stream = int(r.memory_usage("jobwire:{default}:lifecycle", samples=0) or 0)
        stats_keys = list(r.scan_iter("jobwire:{default}:stats:*"))
        stats = sum(int(r.memory_usage(k, samples=0) or 0) for k in stats_keys)
        entries = int(r.xlen("jobwire:{default}:lifecycle"))
    row = b.row(
        "Redis bytes per job: event stream",
        "bytes",
        higher_is_better=False,
        note=f"{entries:,} events for {count:,} jobs; capped at 10,000 events per queue",
    )
    row.values.append(stream / count)
    row = b.row(
        "Redis bytes: stats hashes",
        "bytes",
        higher_is_better=False,
        note=f"{len(stats_keys)} hashes (minute + hour) for one function; per bucket, not per job",
    )
    row.values.append(float(stats))


# ------------------------------------------------------------------------------ cpu


def bench_cpu(b: Bench) -> None:
    count = b.n(100, 40)
    rows = {
        kind: b.row(
            f"cpu_sync ({kind})",
            "parallelism",
            bar="≥ 1.6 (process)" if kind == "process" else "(GIL-bound)",
            note=f"{count} jobs of ~20 ms CPU; Σ job CPU / wall",
        )
        for kind in ("thread", "process")
    }
    for _ in range(b.repeat):
        for kind, row in rows.items():
            b.flush()
            proc = spawn_worker(b, b.tmp / "unused", -1, 10, "CpuSettings")
            try:
                with jobwire.Client.from_url(b.url, **EVENTS) as client:
                    client.enqueue(f"cpu_{kind}", 0.001).result(timeout=60)  # warm up
                    jobs = [client.enqueue(f"cpu_{kind}", 0.02) for _ in range(count)]
                    results = [j.result(timeout=120) for j in jobs]
                    infos = [j.result_info() for j in jobs]
            finally:
                stop(proc)
            wall = (
                max(i.finish_time for i in infos) - min(i.start_time for i in infos)
            ).total_seconds()
            row.values.append(sum(results) / wall)


# ------------------------------------------------------------------------------ memory, depth


def bench_memory(b: Bench) -> None:
    count = b.n(10_000, 2000)
    b.flush()
    with redis.Redis.from_url(b.url) as r, jobwire.Client.from_url(b.url, **EVENTS) as client:
        client.enqueue("noop")
        before = int(r.info("memory")["used_memory"])
        for _ in range(0, count, 1000):
            client.enqueue_many([JobSpec("noop") for _ in range(1000)])
        after = int(r.info("memory")["used_memory"])
        entry_bytes = int(r.memory_usage("jobwire:{default}:stream", samples=0) or 0)
        buckets = list(r.scan_iter("jobwire:{default}:queued:*", count=1000))
        index_bytes = sum(int(r.memory_usage(k, samples=0) or 0) for k in buckets)
        compact = sum(r.object("encoding", k) == b"listpack" for k in buckets)
        events = int(r.memory_usage("jobwire:{default}:lifecycle", samples=0) or 0)
        hashes = sum(1 for _ in r.scan_iter("jobwire:{default}:job:*", count=1000))
    row = b.row(
        "Redis bytes per queued no-arg JSON job",
        "bytes",
        higher_is_better=False,
        note=f"used_memory delta over {count} jobs, events {'on' if b.events else 'off'}; "
        f"per job: stream entry "
        f"{entry_bytes / (count + 1):.0f} B, index {index_bytes / (count + 1):.0f} B "
        f"({compact} of {len(buckets)} buckets compact), event {events / (count + 1):.0f} B; "
        f"{hashes} job hashes",
    )
    row.values.append((after - before) / count)

    total = b.n(100_000, 10_000)
    b.flush()
    with jobwire.Client.from_url(b.url, **EVENTS) as client:
        for _ in range(0, total, 1000):
            client.enqueue_many([JobSpec("noop") for _ in range(1000)])
    done = b.tmp / "rss-done"
    proc = spawn_worker(b, done, total, 10)
    samples = []
    try:
        with jobwire.Client.from_url(b.url, **EVENTS) as client:
            while not done.exists():
                left = client.queue_size()
                samples.append((total - left, rss_kib(proc.pid)))
                time.sleep(0.5)
        samples.append((total, rss_kib(proc.pid)))
    finally:
        stop(proc)
    early = next((kib for n, kib in samples if n >= total // 10), samples[0][1])
    rss = b.row(
        f"worker RSS after {total:,} jobs",
        "MiB",
        higher_is_better=False,
        note=f"at {total // 10:,} jobs: {early / 1024:.1f} MiB",
    )
    rss.values.append(samples[-1][1] / 1024)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def bench_depth(b: Bench) -> None:
    """Enqueue and fetch+finish cost with 1k, 100k and 1M jobs already queued."""
    from jobwire.consumer import Consumer
    from jobwire.protocol import run_sync
    from jobwire.wire import ResultEnvelope

    depths = [1_000, 10_000] if b.quick else [1_000, 100_000, 1_000_000]
    sample = 2000
    for depth in depths:
        b.flush()
        client = jobwire.Client.from_url(b.url, **EVENTS)
        for start in range(0, depth, 5000):
            client.enqueue_many([JobSpec("noop") for _ in range(min(5000, depth - start))])
        started = time.perf_counter()
        for _ in range(sample):
            client.enqueue("noop")
        enqueue_us = (time.perf_counter() - started) / sample * 1e6
        consumer = Consumer(client._core, "bench")
        run_sync(client.redis, consumer.ensure_group())
        now = int(time.time() * 1000)
        started = time.perf_counter()
        taken = 0
        while taken < sample:
            batch = run_sync(client.redis, fetch(consumer, 10))
            for d in batch:
                result = ResultEnvelope(
                    id=d.job_id, function="noop", enqueued_ms=now, started_ms=now, finished_ms=now
                )
                run_sync(client.redis, finish(consumer, d, result, 60))
            taken += len(batch)
        fetch_us = (time.perf_counter() - started) / taken * 1e6
        client.close()
        row = b.row(
            f"queue depth {depth:,}",
            "µs per job",
            higher_is_better=False,
            note=f"fetch+finish {fetch_us:.0f} µs per job",
        )
        row.values.append(enqueue_us)


# ------------------------------------------------------------------------------ report

WORKLOADS: dict[str, Callable[[Bench], None]] = {
    "enqueue": bench_enqueue,
    "enqueue_concurrent": bench_enqueue_concurrent,
    "drain": bench_drain,
    "latency": bench_latency,
    "cpu": bench_cpu,
    "memory": bench_memory,
    "depth": bench_depth,
    "events": bench_events,
    "processes": lambda b: scaling.bench_processes(b),
    "cluster": lambda b: scaling.bench_cluster(b),
}


def report(b: Bench, out: Path) -> str:
    lines = [
        f"jobwire {jobwire.__version__}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"Python {platform.python_version()}, redis-py {redis.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}, "
        f"{'quick' if b.quick else 'full'} run, {b.repeat} repeats (median, min–max)",
        "",
        "| workload | jobwire | baseline (plain redis-py) | ratio | bar | notes |",
        "|---|---|---|---|---|---|",
    ]
    for row in b.rows:
        ratio = row.ratio()
        lines.append(
            f"| {row.workload} | {row.cell(row.values)} {row.unit} | "
            f"{row.cell(row.baseline) + ' ' + row.unit if row.baseline else '—'} | "
            f"{f'{ratio:.2f}×' if ratio is not None else '—'} | {row.bar} | {row.note} |"
        )
        record = {
            "time": datetime.now(timezone.utc).isoformat(),
            "quick": b.quick,
            "workload": row.workload,
            "unit": row.unit,
            "values": row.values,
            "baseline": row.baseline,
            "ratio": ratio,
        }
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
    return "\n".join(lines)


@contextmanager
def redis_for_bench() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


def byte_compile() -> None:
    """Write jobwire's bytecode first, as installing a wheel does.

    A source tree imported with ``PYTHONDONTWRITEBYTECODE`` set (or not yet imported since
    an edit) compiles every changed module again in each worker process it spawns, which
    showed as tens of milliseconds of start-up that no installed jobwire pays.
    """
    import jobwire.wire
    import jobwire.worker

    for package in (jobwire, jobwire.wire, jobwire.worker):
        compileall.compile_dir(str(Path(package.__file__).parent), quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts: under a minute")
    parser.add_argument("--repeat", type=int, default=None, help="runs per workload (3)")
    parser.add_argument("--only", nargs="*", choices=list(WORKLOADS), help="some workloads")
    parser.add_argument("--json", type=Path, default=HERE / "results.jsonl")
    parser.add_argument(
        "--no-events", action="store_true", help="workers and clients write no events or stats"
    )
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    byte_compile()
    EVENTS["events"] = not args.no_events
    with redis_for_bench() as server:
        bench = Bench(server.url, server, args.quick, repeat, events=not args.no_events)
        try:
            for name in args.only or WORKLOADS:
                started = time.monotonic()
                WORKLOADS[name](bench)
                print(f"  {name}: {time.monotonic() - started:.1f}s", file=sys.stderr)
        finally:
            shutil.rmtree(bench.tmp, ignore_errors=True)
        print(report(bench, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
