"""Prometheus metrics of a worker: ``/metrics`` parsed by prometheus_client's own parser."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import jobwire
from jobwire.worker import Retry, func
from tests.helpers.redis_harness import free_port
from tests.helpers.support import wait_until
from tests.helpers.workers import StartWorker


async def ok(ctx: dict[str, Any]) -> int:
    return 1


async def boom(ctx: dict[str, Any]) -> None:
    raise ValueError("boom")


async def once_more(ctx: dict[str, Any]) -> str:
    if ctx["job_try"] == 1:
        raise Retry(defer=0.01)
    return "again"


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_jobs_by_function_and_outcome_with_durations(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    port = free_port()
    worker = start_worker(
        [func(ok), func(boom, max_tries=1), func(once_more)], metrics_port=port,
        metrics_host="127.0.0.1",
    )  # fmt: skip
    for _ in range(3):
        client.enqueue("ok").result(timeout=10)
    with pytest.raises(jobwire.JobFailed):
        client.enqueue("boom").result(timeout=10)
    assert client.enqueue("once_more").result(timeout=10) == "again"
    # A result is visible to the client as soon as Redis commits it; the worker frees
    # the slot when it reads the commit's reply, a moment later.
    samples = wait_until(
        lambda: (s := _scrape(port)).get(("jobwire_jobs_in_flight", ()), 1) == 0 and s
    )
    assert samples, "jobwire_jobs_in_flight never went back to 0"

    def jobs(function: str, outcome: str) -> float:
        labels = (("function", function), ("outcome", outcome), ("queue", "default"))
        return samples[("jobwire_jobs_total", labels)]

    assert jobs("ok", "success") == 3
    assert jobs("boom", "error") == 1
    assert jobs("once_more", "retried") == 1 and jobs("once_more", "success") == 1
    count = samples[
        ("jobwire_job_duration_seconds_count", (("function", "ok"), ("queue", "default")))
    ]
    inf = samples[
        (
            "jobwire_job_duration_seconds_bucket",
            (("function", "ok"), ("le", "+Inf"), ("queue", "default")),
        )
    ]
    assert count == inf == 3
    assert (
        samples[("jobwire_job_duration_seconds_sum", (("function", "ok"), ("queue", "default")))]
        >= 0
    )
    assert samples[("jobwire_jobs_in_flight", ())] == 0
    assert samples[("jobwire_job_slots", ())] == worker.max_jobs
    assert ("jobwire_event_loop_lag_seconds", ()) in samples
    assert samples[("jobwire_lease_reclaims_total", ())] == 0
    assert samples[("jobwire_dead_letters_total", ())] == 0
    info = [k for k in samples if k[0] == "jobwire_worker_info"]
    assert info and dict(info[0][1])["worker"] == worker.name


def test_a_taken_metrics_port_is_a_clear_error(
    start_worker: StartWorker, client: jobwire.Client
) -> None:
    port = free_port()
    start_worker([func(ok)], metrics_port=port, metrics_host="127.0.0.1")
    with pytest.raises(jobwire.InvalidArgument, match=f"metrics_port {port}.*cannot listen"):
        start_worker([func(ok)], metrics_port=port, metrics_host="127.0.0.1")


def test_a_bad_metrics_port_is_refused() -> None:
    from jobwire.worker import Worker

    with pytest.raises(jobwire.InvalidArgument, match="metrics_port"):
        Worker([func(ok)], metrics_port=70000)
