"""Scaling workloads (README, Scaling): worker processes, and a sharded queue on a cluster.

Both drain no-op jobs from a full queue with ``jobwire worker --processes N``, timed from the
first job taken until the queue is empty (the steady rate, without the processes' start-up;
the harness reads the queue's counts every 5 ms). Each also reads
Redis's own CPU time (``INFO cpu``) before and after, so that the table says what one job
costs Redis: the ceiling of one master (one shard) is about one second divided by that.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

import jobwire
from jobwire import JobSpec
from tests.helpers.redis_harness import RedisCluster

HERE = Path(__file__).resolve().parent


def redis_cpu(ports: Sequence[int]) -> float:
    """Seconds of CPU the servers on ``ports`` have used (user + system, main thread too)."""
    total = 0.0
    for port in ports:
        with redis.Redis(port=port) as r:
            info = r.info("cpu")
            total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


def drain(
    url: str, ports: Sequence[int], count: int, processes: int, partitions: int, log: str
) -> tuple[float, float, float]:
    """Jobs/s of one drain, Redis µs of CPU per job taken and run, and per job enqueued."""
    options = {"partitions": {"default": partitions}} if partitions > 1 else {}
    with jobwire.Client.from_url(url, **options) as client:  # type: ignore[arg-type]
        before = redis_cpu(ports)
        for start in range(0, count, 1000):
            client.enqueue_many([JobSpec("noop") for _ in range(min(1000, count - start))])
        enqueued = (redis_cpu(ports) - before) / count * 1e6
        env = {**os.environ, "REDIS_URL": url, "BENCH_PARTITIONS": str(partitions)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobwire", "worker", "bench_jobs.ScalingSettings",
             "--processes", str(processes)],
            cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "ab"),  # noqa: SIM115
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            started = cpu = None
            while True:
                stats = client.queue_stats()
                if started is None and stats["queued"] < count:
                    started, cpu = time.time(), redis_cpu(ports)
                if not (stats["queued"] or stats["deferred"] or stats["in_progress"]):
                    break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"the drain did not finish: {stats}")
                time.sleep(0.005)  # the harness watching, not a path under test
            finished = time.time()
            assert started is not None and cpu is not None
            used = redis_cpu(ports) - cpu
        finally:
            proc.terminate()
            proc.wait(60)
    return count / (finished - started), used / count * 1e6, enqueued


def bench_processes(b: Any) -> None:
    """drain_noop with --processes 1 and 2 on one Redis (interleaved)."""
    count = b.n(10_000, 2_000)
    two = b.row(
        "drain_noop --processes 2",
        "jobs/s",
        note="baseline: --processes 1, same run; first job taken to empty queue",
    )
    cpu = b.row("Redis CPU per job run (one Redis)", "µs", higher_is_better=False,
                note="fetch, start, finish, events, stats")  # fmt: skip
    sent = b.row("Redis CPU per job enqueued (one Redis)", "µs", higher_is_better=False,
                 note="enqueue_many, 1,000 a call")  # fmt: skip
    for _ in range(b.repeat):
        b.flush()
        one, used, enqueued = drain(b.url, [b.server.port], count, 1, 1, str(b.tmp / "worker.log"))
        two.baseline.append(one)
        cpu.values.append(used)
        sent.values.append(enqueued)
        b.flush()
        two.values.append(drain(b.url, [b.server.port], count, 2, 1, str(b.tmp / "worker.log"))[0])


def bench_cluster(b: Any) -> None:
    """drain_noop on a 3-master cluster: queue ``default`` with K=1 and K=3 partitions."""
    count = b.n(10_000, 2_000)
    three = b.row(
        "cluster drain_noop K=3, --processes 2",
        "jobs/s",
        note="baseline: K=1 (one master), same run; 3 masters + 3 replicas on this machine",
    )
    cpu = b.row("Redis CPU per job run (cluster, K=3, all masters)", "µs",
                higher_is_better=False, note="with replication to one replica each")  # fmt: skip
    cluster = RedisCluster().start()
    try:
        ports = [n.port for n in cluster.primaries()]
        log = str(b.tmp / "worker.log")
        for _ in range(b.repeat):
            cluster.flush()
            three.baseline.append(drain(cluster.url, ports, count, 2, 1, log)[0])
            cluster.flush()
            got, used, _ = drain(cluster.url, ports, count, 2, 3, log)
            three.values.append(got)
            cpu.values.append(used)
    finally:
        cluster.close()
