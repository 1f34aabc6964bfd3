"""Live updates: one follower task per application, fed by the queues' event streams.

While at least one browser watches (a server-sent-events stream is open), a single task
follows the lifecycle events of every queue with one blocking ``XREAD`` over all their
streams (no polling), and pushes to every open stream at most once per ``interval`` (1 s)
while events arrive: the events since the last push, and the counts re-read then (events
say what happened; the counts say what the queues hold, including what events do not
carry, such as jobs enqueued with events off or a pause). Without events, the counts are
re-read and pushed every ``refresh`` seconds (5), the workers' health records every
``workers_every`` seconds (5: reading them scans the keyspace), or at the next push after
an event names a worker not yet counted for its queue. The last ``history``
samples and ``recent`` events are kept in memory for pages that open later. When the last
viewer leaves the task is cancelled: Redis sees the same load for one viewer as for fifty, and none
for zero.
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
from jobwire.events import Event
from jobwire.wire import WireError

from . import data

__all__ = ["Sampler", "event_dict", "sse_stream"]

logger = logging.getLogger("jobwire.dashboard")


def event_dict(event: Event) -> dict[str, Any]:
    """An event as the live stream sends it (text from Redis: the page shows it as text)."""
    progress = event.progress
    return {
        "id": event.id,
        "queue": event.queue_name,
        "type": event.type.value,
        "job_id": event.job_id,
        "function": event.function,
        "try": event.job_try,
        "t": int(event.time.timestamp() * 1000),
        "worker": event.worker,
        "duration": event.duration,
        "info": "" if progress else event.info[:300],
        "progress": None
        if progress is None
        else {"value": progress.value, "message": progress.message},
    }


class Sampler:
    """Follows the queues' events and counts for whoever listens (see the module docs)."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        interval: float = 1.0,
        refresh: float = 5.0,
        workers_every: float = 5.0,
        history: int = 300,
        recent: int = 50,
    ) -> None:
        self.client = client
        self.interval = max(1.0, interval)  # never more than one push a second
        self.refresh = max(self.interval, refresh)
        self.workers_every = workers_every
        self.samples: deque[dict[str, Any]] = deque(maxlen=history)
        self.recent = max(1, recent)
        self.events: deque[dict[str, Any]] = deque(maxlen=self.recent)
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self._workers_read = float("-inf")
        self._serving: dict[str, set[str]] = {}  # queue -> its live workers
        self._cursors: dict[str, str] = {}  # queue -> id of the last event read

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
            if not self._listeners and self._task is not None:
                self._task.cancel()  # the last viewer left: stop reading Redis now
                self._task = None

    @property
    def following(self) -> bool:
        """True while the follower task runs."""
        return self._task is not None and not self._task.done()

    async def close(self) -> None:
        """Stop the follower task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _push(self, sample: dict[str, Any]) -> None:
        for queue in list(self._listeners):
            if queue.full():  # a slow reader skips samples rather than holding memory
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(sample)

    async def _run(self) -> None:
        self._cursors = {}  # a new follower starts from now
        pending: list[dict[str, Any]] = []
        pushed = float("-inf")
        while self._listeners:
            try:
                now = time.monotonic()
                if now >= pushed + self.refresh or (pending and now >= pushed + self.interval):
                    sample = await self.sample()
                    sample["events"] = pending
                    self.events.extend(pending)  # kept for later viewers once pushed, not twice
                    pending = []
                    pushed = time.monotonic()
                    self.samples.append({k: v for k, v in sample.items() if k != "events"})
                    self._push(sample)
                    continue
                if pending:  # coalesce: what comes before the next push goes with it
                    await asyncio.sleep(pushed + self.interval - now)
                    block = None
                else:
                    block = pushed + self.refresh - now
                events, self._cursors = await data.read_events(self.client, self._cursors, block)
                if not self._cursors:  # no queue yet: nothing to follow
                    await asyncio.sleep(pushed + self.refresh - time.monotonic())
            except (JobwireError, WireError, OSError) as exc:
                self._push({"t": int(time.time() * 1000), "error": str(exc)[:300]})
                pushed = time.monotonic()
                await asyncio.sleep(self.refresh)
                continue
            pending.extend(event_dict(e) for e in events)
            if any(
                e.worker and e.worker not in self._serving.get(e.queue_name, ()) for e in events
            ):
                self._workers_read = float("-inf")  # a worker new to a queue: count it next push
            del pending[: -self.recent or None]  # a push carries the latest ``recent`` events

    async def sample(self) -> dict[str, Any]:
        """Every queue's counts and live workers now (follows new queues' events)."""
        names = await data.queue_names(self.client)
        for name in names:
            if name not in self._cursors:
                self._cursors[name] = await data.event_cursor(self.client, name)
        queues = {}
        for name in names:
            queues[name] = (await data.queue_counts(self.client, name)).as_dict()
        if time.monotonic() - self._workers_read >= self.workers_every:
            self._workers_read = time.monotonic()
            self._serving = {
                n: {v.name for v in (await data.workers(self.client, n))[0]} for n in names
            }
        for name in names:
            queues[name]["workers"] = len(self._serving.get(name, ()))
        return {"t": int(time.time() * 1000), "queues": queues}


async def sse_stream(sampler: Sampler) -> AsyncIterator[bytes]:
    """Server-sent events: the samples and events kept so far, then one event per push.

    ``retry`` tells the browser to wait 3 s before reconnecting after a drop.
    """
    async with sampler.listen() as queue:
        backlog = {"samples": list(sampler.samples), "events": list(sampler.events)}
        yield b"retry: 3000\n\n"
        yield b"event: history\ndata: " + orjson.dumps(backlog) + b"\n\n"
        while True:
            sample = await queue.get()
            yield b"data: " + orjson.dumps(sample) + b"\n\n"
