"""Queue-level gauges for Prometheus, read from Redis when it scrapes the dashboard's ``/metrics``.

A worker's own ``/metrics`` (``--metrics-port``) counts what that worker did; what a queue
holds is in Redis, seen by every dashboard, so it is served here:

* ``jobwire_queue_jobs{queue,state}`` jobs by state: ``queued``, ``deferred``,
  ``in_progress``, ``dead_letters``;
* ``jobwire_queue_oldest_waiting_seconds{queue}`` how long the oldest queued job (the next
  to run) has waited since it was enqueued, by Redis's clock; 0 when none waits;
* ``jobwire_queue_paused{queue}`` 1 while the queue is paused;
* ``jobwire_workers{queue}`` live workers serving the queue (their health records).

The endpoint reads everything first (asynchronously), then a custom collector turns that
reading into the series of one exposition: nothing is cached between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jobwire.aio import AsyncClient

from . import data

__all__ = ["QueueGauges", "exposition", "read_gauges"]

STATES = ("queued", "deferred", "in_progress", "dead_letters")


@dataclass(frozen=True, slots=True)
class QueueGauges:
    """What ``/metrics`` says of one queue."""

    counts: data.QueueCounts
    oldest_waiting: float  # seconds; 0 when none waits
    workers: int


async def read_gauges(client: AsyncClient) -> list[QueueGauges]:
    """Every known queue's gauges, read now."""
    out = []
    now = await data.redis_now(client)
    for name in await data.queue_names(client):
        counts = await data.queue_counts(client, name)
        oldest = await data.oldest_waiting(client, name)
        age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        live, _stale = await data.workers(client, name)
        out.append(QueueGauges(counts, round(age, 3), len(live)))
    return out


class _Collector:
    """One scrape's series, built from a reading."""

    def __init__(self, gauges: list[QueueGauges]) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        jobs = GaugeMetricFamily(
            "jobwire_queue_jobs", "Jobs of a queue by state", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "jobwire_queue_oldest_waiting_seconds",
            "Age of the oldest queued job (0 when none waits)",
            labels=["queue"],
        )
        paused = GaugeMetricFamily(
            "jobwire_queue_paused", "1 while the queue is paused", labels=["queue"]
        )
        workers = GaugeMetricFamily(
            "jobwire_workers", "Live workers serving the queue", labels=["queue"]
        )
        for g in self.gauges:
            name = g.counts.name
            for state in STATES:
                jobs.add_metric([name, state], getattr(g.counts, state))
            oldest.add_metric([name], g.oldest_waiting)
            paused.add_metric([name], 1 if g.counts.paused else 0)
            workers.add_metric([name], g.workers)
        yield from (jobs, oldest, paused, workers)


def exposition(gauges: list[QueueGauges]) -> tuple[bytes, str]:
    """The Prometheus text exposition of a reading, and its content type."""
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    except ImportError as exc:  # pragma: no cover - the dashboard extra installs it
        raise RuntimeError(
            "the dashboard's /metrics needs prometheus_client: pip install 'jobwire[dashboard]'"
        ) from exc
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(gauges))
    return generate_latest(registry), CONTENT_TYPE_LATEST
