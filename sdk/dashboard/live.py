"""Live updates: one sampler per application, read at most once a second, fanned out.

While at least one browser watches (a server-sent-events stream is open), a single task
reads every queue's counts once a second and the workers' health records once per
``workers_every`` seconds (5: reading them scans the keyspace), keeps the last ``history``
samples in memory for the charts, and hands each sample to every open stream. With nobody
watching it stops: Redis sees the same load for one viewer as for fifty, and none for zero.

Jobs finished per second come from the workers' own counters (complete + failed), as the
difference between two refreshes of a worker's health record: a rate averaged over each
worker's health-check interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import orjson

from jobwire.aio import AsyncClient
from jobwire.errors import JobwireError
from jobwire.wire import WireError

from . import data

__all__ = ["Sampler", "sse_stream"]

logger = logging.getLogger("jobwire.dashboard")


class Sampler:
    """Samples queue counts once a second for whoever listens (see the module docs)."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        interval: float = 1.0,
        workers_every: float = 5.0,
        history: int = 300,
    ) -> None:
        self.client = client
        self.interval = max(1.0, interval)  # never more than once a second
        self.workers_every = workers_every
        self.samples: deque[dict[str, Any]] = deque(maxlen=history)
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._workers_read = float("-inf")
        self._workers_reads = 0
        self._totals: dict[str, tuple[int, int]] = {}  # worker -> (record time, finished)
        self._rates: dict[str, float] = {}  # worker -> jobs finished per second
        self._serving: dict[str, set[str]] = {}  # queue -> its live workers

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of samples, from now until the block ends (starts the task if needed)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10)
        self._listeners.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            yield queue
        finally:
            self._listeners.discard(queue)

    async def close(self) -> None:
        """Stop the sampling task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._listeners:
            started = time.monotonic()
            try:
                sample = await self.sample()
            except (JobwireError, WireError, OSError) as exc:
                sample = {"t": int(time.time() * 1000), "error": str(exc)[:300]}
            else:
                self.samples.append(sample)
            for queue in list(self._listeners):
                if queue.full():  # a slow reader skips samples rather than holding memory
                    with contextlib.suppress(asyncio.QueueEmpty):
                        queue.get_nowait()
                queue.put_nowait(sample)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        self._task = None

    async def sample(self) -> dict[str, Any]:
        """One sample: every queue's counts, live workers and jobs finished per second."""
        names = await data.queue_names(self.client)
        queues = {}
        for name in names:
            queues[name] = (await data.queue_counts(self.client, name)).as_dict()
        # the first reads come a second apart, so that a rate shows soon after a start
        if self._workers_reads < 3 or time.monotonic() - self._workers_read >= self.workers_every:
            self._workers_read = time.monotonic()
            self._workers_reads += 1
            await self._read_workers(names)
        for name in names:
            serving = self._serving.get(name, set())
            # a worker's counters cover all its queues: this is what its workers finish
            queues[name]["finished_per_s"] = round(sum(self._rates.get(w, 0.0) for w in serving), 2)
            queues[name]["workers"] = len(serving)
        total = round(sum(self._rates.values()), 2)
        return {"t": int(time.time() * 1000), "queues": queues, "finished_per_s": total}

    async def _read_workers(self, names: list[str]) -> None:
        serving: dict[str, set[str]] = {}
        totals: dict[str, tuple[int, int]] = {}
        for name in names:
            views, _stale = await data.workers(self.client, name)
            serving[name] = {v.name for v in views}
            totals.update(data.worker_totals(views))  # the same counters in each record
        for worker, (t_ms, done) in totals.items():
            before = self._totals.get(worker)
            if before is not None and t_ms > before[0]:
                delta = done - before[1]  # a restarted worker counts from 0 again
                self._rates[worker] = max(delta, 0) * 1000 / (t_ms - before[0])
            if before is None or t_ms > before[0]:
                self._totals[worker] = (t_ms, done)
        for gone in set(self._totals) - set(totals):  # no longer live: no longer counts
            self._totals.pop(gone, None)
            self._rates.pop(gone, None)
        self._serving = serving


async def sse_stream(sampler: Sampler) -> AsyncIterator[bytes]:
    """Server-sent events: the samples kept so far, then one event per new sample.

    ``retry`` tells the browser to wait 3 s before reconnecting after a drop.
    """
    async with sampler.listen() as queue:
        backlog = list(sampler.samples)
        yield b"retry: 3000\n\n"
        yield b"event: history\ndata: " + orjson.dumps(backlog) + b"\n\n"
        while True:
            sample = await queue.get()
            yield b"data: " + orjson.dumps(sample) + b"\n\n"
