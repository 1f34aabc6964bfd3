"""Prometheus metrics of one worker: ``jobwire worker ... --metrics-port N``.

Served with the ``prometheus_client`` library (the ``jobwire[metrics]`` extra) on
``/metrics``. The hot path only counts in plain dicts (one increment and one bucket
index per job); the series are built when Prometheus scrapes, from those counts and the
worker's own state:

* ``jobwire_jobs_total{queue,function,outcome}`` attempts by how they ended (``success``,
  ``error``, ``timeout``, ``aborted``, ``retried``);
* ``jobwire_job_duration_seconds{queue,function}`` a histogram of attempt durations, with
  the fixed bounds of the stats kept in Redis (:data:`jobwire.stats.DURATION_BOUNDS`);
* ``jobwire_jobs_in_flight`` jobs running now, ``jobwire_job_slots`` ``max_jobs``;
* ``jobwire_lease_reclaims_total``, ``jobwire_leases_lost_total``,
  ``jobwire_dead_letters_total``, ``jobwire_handed_back_total``;
* ``jobwire_event_loop_lag_seconds`` the latest measured lag of the event loop;
* ``jobwire_worker_info{worker,version}`` 1.

Queue-level gauges (depth, deferred, running, dead letters, oldest waiting job) come from
Redis and are served by the dashboard's ``/metrics``, which sees every queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from jobwire import __version__
from jobwire.errors import InvalidArgument
from jobwire.stats import DURATION_BOUNDS, bucket_index

if TYPE_CHECKING:
    from .runner import Worker

__all__ = ["JobMetrics", "MetricsServer"]

logger = logging.getLogger("jobwire.worker")


class JobMetrics:
    """Attempt counts and duration histograms by queue and function, since the start."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        # (queue, function) -> [count per bucket (the last one: beyond the bounds), sum]
        self.durations: dict[tuple[str, str], list[float]] = {}

    def observe(self, queue: str, function: str, outcome: str, seconds: float) -> None:
        """Count one attempt (called by the worker as each attempt ends)."""
        key = (queue, function, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1
        histogram = self.durations.get((queue, function))
        if histogram is None:
            histogram = self.durations[(queue, function)] = [0.0] * (len(DURATION_BOUNDS) + 2)
        histogram[bucket_index(seconds)] += 1
        histogram[-1] += seconds


class _Collector:
    """Builds the series at scrape time (in the HTTP server's thread)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        w = self.worker
        metrics = w.metrics
        jobs = CounterMetricFamily(
            "jobwire_jobs", "Attempts by how they ended", labels=["queue", "function", "outcome"]
        )
        for (queue, function, outcome), count in list(metrics.counts.items()):
            jobs.add_metric([queue, function, outcome], count)
        yield jobs
        durations = HistogramMetricFamily(
            "jobwire_job_duration_seconds", "Attempt durations", labels=["queue", "function"]
        )
        for (queue, function), histogram in list(metrics.durations.items()):
            cumulative, buckets = 0.0, []
            bounds = (*map(str, DURATION_BOUNDS), "+Inf")
            for bound, in_bucket in zip(bounds, histogram[:-1], strict=True):
                cumulative += in_bucket
                buckets.append((bound, cumulative))
            durations.add_metric([queue, function], buckets, sum_value=histogram[-1])
        yield durations
        stats = w.stats
        for name, value, text in (
            ("jobwire_lease_reclaims", stats.reclaimed, "Jobs taken over from expired leases"),
            ("jobwire_leases_lost", stats.leases_lost, "Leases this worker lost to another"),
            ("jobwire_dead_letters", stats.dead_lettered, "Messages moved to the dead letters"),
            ("jobwire_handed_back", stats.handed_back, "Jobs handed back (unknown function)"),
        ):
            yield CounterMetricFamily(name, text, value=value)
        yield GaugeMetricFamily(
            "jobwire_jobs_in_flight", "Jobs running now", value=len(w.slots.snapshot())
        )
        yield GaugeMetricFamily("jobwire_job_slots", "Jobs run at once (max_jobs)", w.max_jobs)
        yield GaugeMetricFamily(
            "jobwire_event_loop_lag_seconds", "Latest measured event-loop lag", w.leases.lag
        )
        info = GaugeMetricFamily("jobwire_worker_info", "This worker", labels=["worker", "version"])
        info.add_metric([w.name, __version__], 1)
        yield info


class MetricsServer:
    """The ``/metrics`` endpoint of one worker, in a thread of its own."""

    def __init__(self, worker: Worker, port: int, host: str = "0.0.0.0") -> None:
        try:
            import prometheus_client
        except ImportError:
            raise InvalidArgument(
                "metrics_port needs prometheus_client: pip install 'jobwire[metrics]'"
            ) from None
        self.registry = prometheus_client.CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(worker))
        self.port, self.host = port, host
        self._close: Callable[[], None] | None = None

    def start(self) -> None:
        """Listen; InvalidArgument when the port is taken (the worker does not start)."""
        import prometheus_client

        try:
            server, thread = prometheus_client.start_http_server(
                self.port, addr=self.host, registry=self.registry
            )
        except OSError as exc:
            raise InvalidArgument(
                f"metrics_port {self.port} on {self.host}: cannot listen: {exc}"
            ) from exc
        self.port = server.server_port  # the one chosen when 0 was asked for

        def close() -> None:
            server.shutdown()
            server.server_close()
            thread.join(5)

        self._close = close
        logger.info("metrics on http://%s:%d/metrics", self.host, self.port)

    def stop(self) -> None:
        """Stop listening."""
        if self._close is not None:
            self._close()
            self._close = None
