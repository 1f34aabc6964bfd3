"""Faults with real worker processes: SIGKILL, SIGTERM, Redis restarted. Effects are counted
in a file written by the jobs, independently of the queue's own bookkeeping."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import jobwire
from jobwire import JobStatus
from tests.helpers.redis_harness import RedisServer
from tests.helpers.support import wait_until
from tests.helpers.workers import Workers

pytestmark = pytest.mark.slow


def effects(path: Path, kind: str) -> Counter[str]:
    if not path.exists():
        return Counter()
    return Counter(
        line.split()[1] for line in path.read_text().splitlines() if line.startswith(kind)
    )


def test_sigkill_mid_run_loses_nothing(
    workers: Workers, redis_url: str, client: jobwire.Client, tmp_path: Path
) -> None:
    record = tmp_path / "effects"
    jobs = [client.enqueue("record", str(record), 3.0) for _ in range(50)]
    first = workers.spawn(redis_url)
    assert wait_until(lambda: len(effects(record, "start")) == 50, timeout=30)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = time.monotonic()
    running_at_kill = set(effects(record, "start"))
    workers.spawn(redis_url)
    assert wait_until(lambda: all(j.status() is JobStatus.COMPLETE for j in jobs), timeout=60)
    recovery = time.monotonic() - killed_at
    ends, starts = effects(record, "end"), effects(record, "start")
    print(
        f"SIGKILL with 50 running: all complete {recovery:.1f}s after the kill "
        f"(lease 2s + 3s jobs); {sum(starts.values()) - 50} re-runs"
    )
    assert set(ends) == {j.job_id for j in jobs}  # none lost
    duplicates = {job_id for job_id, n in starts.items() if n > 1}
    assert duplicates <= running_at_kill  # re-runs only of jobs that were running
    assert all(job.result_info().job_try == 2 for job in jobs)  # re-run with try + 1
    assert recovery < 2 + 3 + 10


def test_max_tries_applies_to_re_runs_after_a_kill(
    workers: Workers, redis_url: str, client: jobwire.Client, tmp_path: Path
) -> None:
    record = tmp_path / "effects"
    jobs = [client.enqueue("record", str(record), 3.0) for _ in range(3)]
    first = workers.spawn(redis_url, MAX_TRIES="1")
    assert wait_until(lambda: len(effects(record, "start")) == 3, timeout=30)
    first.kill()
    first.wait()
    workers.spawn(redis_url, MAX_TRIES="1")
    for job in jobs:
        with pytest.raises(jobwire.JobFailed, match="maximum of 1 tries"):
            job.result(timeout=30)
    assert sum(effects(record, "start").values()) == 3  # not run a second time


def test_sigterm_waits_then_requeues_and_exits_zero(
    workers: Workers, redis_url: str, client: jobwire.Client, tmp_path: Path
) -> None:
    record = tmp_path / "effects"
    quick = [client.enqueue("record", str(record), 0.5) for _ in range(5)]
    slow = [client.enqueue("record", str(record), 30.0) for _ in range(5)]
    worker = workers.spawn(redis_url, COMPLETION_WAIT="1.5")
    assert wait_until(lambda: len(effects(record, "start")) == 10, timeout=30)
    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    took = time.monotonic() - signalled
    print(f"SIGTERM: exited 0 after {took:.2f}s (job_completion_wait 1.5s)")
    assert took < 1.5 + 5
    assert all(j.status() is JobStatus.COMPLETE for j in quick)  # finished within the wait
    assert all(j.status() is JobStatus.QUEUED for j in slow)  # handed back, not lost
    assert all(j.info().job_try == 1 for j in slow)  # the interrupted start is not a try


def test_worker_survives_a_redis_restart(
    workers: Workers, redis_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = redis_factory(appendonly=True, appendfsync="always")
    record = tmp_path / "effects"
    with jobwire.Client.from_url(server.url) as client:
        jobs = [client.enqueue("record", str(record), 0.2) for _ in range(60)]
        workers.spawn(server.url, LEASE="1")
        assert wait_until(lambda: len(effects(record, "end")) >= 5, timeout=30)
        server.kill()
        time.sleep(1.0)
        server.restart()
        later = [client.enqueue("record", str(record), 0.0) for _ in range(5)]
        done = wait_until(
            lambda: all(j.status() is JobStatus.COMPLETE for j in jobs + later), timeout=60
        )
        assert done
    assert set(effects(record, "end")) == {j.job_id for j in jobs + later}
