"""Taking jobs from Redis: one fetch loop per queue, and the reclaim of lapsed leases.

A fetch takes up to the free slots' worth of ready jobs in one call (promoting due deferred
jobs first); with nothing ready it blocks on ``XREADGROUP`` while a local timer promotes the
next deferred job at its due time, so an idle worker never polls. A lease that ran out (its
worker died) is reclaimed within a fraction of the lease; a full worker leaves that to
others, or takes reclaimed jobs first when a slot frees.

A Redis that lost its data (restarted without persistence, the stream evicted) answers
NOGROUP: the fetcher recreates the stream and the consumer group and goes on.

A paused queue (``client.pause``) is left alone within a second: the fetch loop reads the
flag when its last reading is half a second old (one ``EXISTS``, never one per job) and
blocks no longer than until the reading is a second old, so no job is taken on a reading
older than that. While paused it reads the flag twice a second and takes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from jobwire.errors import RedisCommandError, RedisError
from jobwire.models import Delivery
from jobwire.protocol import Command, Gen

from .state import QueueState, Slots, Stats
from .supervisor import LoopState, RateLimitedLog

__all__ = ["Fetcher"]

logger = logging.getLogger("jobwire.worker")

#: A paused queue is left alone within this many seconds (see the module documentation).
PAUSE_NOTICE = 1.0


class Fetcher:
    """Takes jobs for one worker and hands each to ``start``."""

    def __init__(
        self,
        *,
        run: Callable[..., Awaitable[Any]],  # (generator[, lane])
        pause: Callable[[float], Awaitable[None]],
        queues: Sequence[QueueState],
        slots: Slots,
        stats: Stats,
        start: Callable[[Delivery, QueueState], None],
        stopping: Callable[[], bool],
        stop: Callable[[], None],
        now_ms: Callable[[], int],
        max_block: float,
        burst: bool,
        max_burst_jobs: int,
    ) -> None:
        self._run = run
        self._pause = pause
        self.queues = queues
        self.slots = slots
        self.stats = stats
        self._start = start
        self._stopping = stopping
        self._stop = stop
        self.now_ms = now_ms
        self.max_block = max_block
        self.burst = burst
        self.max_burst_jobs = max_burst_jobs
        self.started = 0  # jobs handed to ``start`` (for max_burst_jobs)
        self._fetchers = len(queues)
        self.log = RateLimitedLog(30.0)

    def start(self, d: Delivery, q: QueueState) -> None:
        """Hand a delivery to the worker, counting it."""
        self.started += 1
        self._start(d, q)

    # ------------------------------------------------------------ fetch loop

    async def fetch_loop(self, q: QueueState, state: LoopState) -> None:
        """Take jobs from ``q`` while the worker runs (supervised: may raise)."""
        await self._fetch(q, state)
        if self._stopping():
            return
        # burst mode: the last queue to finish stops the worker once running jobs are done
        self._fetchers -= 1
        if self._fetchers == 0:
            state.waiting()
            await self.slots.wait_for(lambda: not self.slots.running)
            self._stop()

    async def _fetch(self, q: QueueState, state: LoopState) -> None:
        while not self._stopping():
            state.waiting()
            await self.slots.wait_for(self._may_start)
            state.beat()
            if self._stopping():
                return
            if self.burst and 0 <= self.max_burst_jobs <= self.started:
                return
            if await self._paused(q):
                state.waiting()
                await self._pause(PAUSE_NOTICE / 2)
                continue
            try:
                got = await self._take(q)
            except RedisCommandError as exc:
                if not _group_missing(exc):
                    raise
                await self._recreate(q)
                continue
            for d in got:
                self.start(d, q)
            if got:
                # the jobs just handed over start (up to their first wait) before the next
                # fetch is built and sent: on an idle worker that is the job's start latency
                await asyncio.sleep(0)
            state.beat()
            if self.burst and not got:
                if not self.slots.running:
                    # a job whose worker died (its lease ran out) is this queue's work too:
                    # a burst worker runs it rather than leave it in progress
                    taken = await self.reclaimed(q)
                    if taken:
                        for d in taken:
                            self.start(d, q)
                        continue
                    moved, q.next_due = await self._run(q.consumer.promote())
                    if moved:
                        continue  # it became due since the fetch (a short retry): take it
                    if q.next_due is None:
                        return  # nothing ready, deferred or running: this queue is drained
                    # burst mode still runs deferred jobs (retries included): wait for them
                    state.waiting()
                    await self._pause(max(0.0, (q.next_due - self.now_ms()) / 1000))
                    continue
                # a running job may retry: look again when one ends
                ended = self.slots.ended
                state.waiting()
                await self.slots.wait_for(
                    lambda: self.slots.ended != ended or self._stopping()  # noqa: B023
                )

    def _share(self) -> int:
        """How many slots one fetch may take: all free ones, or a fair part of them.

        While several of a worker's queues (or a sharded queue's partitions) have jobs
        waiting, each fetch takes at most ``max_jobs`` divided among them, so that no queue
        waits while another fills every slot; a single busy queue takes every free slot.
        """
        free = self.slots.free()
        busy = sum(1 for q in self.queues if q.busy)
        if busy <= 1:
            return free
        return min(free, -(-self.slots.max_jobs // busy))

    def _may_start(self) -> bool:
        """A slot is free, or the worker stops (what a fetch loop waits for).

        Jobs whose outcome is being recorded hold no slot (see ``Slots``), so a fetch
        takes their places while Redis writes their results, and the jobs of one batch,
        ending together, free their slots together for one fetch.
        """
        return self.slots.free() > 0 or self._stopping()

    async def _paused(self, q: QueueState) -> bool:
        """The queue's paused flag, read again when the last reading is half a second old."""
        now = time.monotonic()
        if now - q.paused_read_at >= PAUSE_NOTICE / 2:
            paused = bool(await self._run(_exists(q.consumer.keys.paused)))
            if paused != q.paused:
                logger.info("queue %r %s", q.name, "paused" if paused else "resumed")
            q.paused, q.paused_read_at = paused, now
        return q.paused

    async def _recreate(self, q: QueueState) -> None:
        logger.error(
            "queue %r: its stream or consumer group is gone (Redis restarted without "
            "persistence, or evicted keys): recreating them; jobs stored before are lost",
            q.name,
        )
        await self._run(q.consumer.ensure_group())
        await self._run(q.consumer.core.register_queues([q.name]))

    async def _take(self, q: QueueState) -> list[Delivery]:
        got: list[Delivery]
        if q.reclaim_due:
            free = self.slots.free()
            got = await self.reclaimed(q)
            q.reclaim_due = len(got) == free  # a full batch: there may be more
            if got:
                return got
        # one round trip: promotes due deferred jobs, takes ready ones, tells the next due time
        while True:
            with self.slots.reserving(self._share()) as count:
                if count:
                    got, q.next_due = await self._run(
                        q.consumer.fetch_and_next_due(count), q.fetch_lane
                    )
                    break
            # another queue's fetch holds the free slots: wait for its jobs to start
            await self.slots.wait_for(self._may_start)
            if self._stopping():
                return []
        q.busy = bool(got)
        if got or self.burst or self._stopping():  # (a cancel swallowed by redis-py: see pause)
            return got
        # never block past the moment the paused flag's reading is a second old
        block = min(self.max_block, PAUSE_NOTICE - (time.monotonic() - q.paused_read_at))
        if block <= 0.01:
            return got
        # no slots are held while blocked (an idle queue would keep them from busy ones)
        wanted = self._share()
        if wanted <= 0:
            return got  # another queue's fetch took the free slots meanwhile
        timer: asyncio.Task[None] | None = None
        if q.next_due is not None and (q.next_due - self.now_ms()) / 1000 < block:
            # Redis ends a BLOCK on its own clock tick (100 ms with the default hz 10), too
            # coarse for deferred jobs. A local timer promotes the job at its due time on
            # another connection instead; its XADD wakes the blocked read at once.
            timer = asyncio.ensure_future(self._promote_at(q, q.next_due))
        try:
            got = await self._run(q.consumer.read(wanted, block), q.fetch_lane)
        finally:
            if timer is not None:
                timer.cancel()
        q.busy = bool(got)
        return got

    async def _promote_at(self, q: QueueState, due_ms: int) -> None:
        await asyncio.sleep(max(0.0, (due_ms - self.now_ms()) / 1000))
        with contextlib.suppress(RedisError):
            _, q.next_due = await self._run(q.consumer.promote())

    # --------------------------------------------------------------- reclaim

    async def reclaim_loop(self, interval: float, state: LoopState) -> None:
        """Take over jobs whose lease ran out, every ``interval`` seconds (supervised)."""
        while not self._stopping():
            await self._pause(interval)
            for q in self.queues:
                if self._stopping():
                    return
                free = self.slots.free()
                if q.paused:
                    continue  # a paused queue's lapsed jobs wait for its resume
                if free == 0:
                    q.reclaim_due = True  # the fetch loop reclaims first when a slot frees
                    continue
                try:
                    got = await self.reclaimed(q)
                except RedisCommandError as exc:
                    if not _group_missing(exc):
                        raise
                    continue  # the fetch loop recreates the group
                # a full batch: there may be more, and the next free slots go to them
                q.reclaim_due = q.reclaim_due or len(got) == free
                for d in got:
                    self.start(d, q)
            state.beat()

    async def reclaimed(self, q: QueueState) -> list[Delivery]:
        """Take over jobs of ``q`` whose lease ran out, up to the free slots."""
        got: list[Delivery] = await self._run(q.consumer.reclaim(self.slots.free()))
        for d in got:
            self.stats.reclaimed += 1
            self.log.log(
                logging.WARNING, "reclaim", "job %r reclaimed after its lease ran out (try %d)",
                d.job_id, d.tries,
            )  # fmt: skip
        return got


def _exists(key: str) -> Gen[int]:
    found: int = yield Command(("EXISTS", key))
    return found


def _group_missing(exc: RedisCommandError) -> bool:
    """True when Redis lost the queue's stream or consumer group.

    That happens after a restart without persistence or a FLUSHALL; the fetch loop then
    recreates both.
    """
    return "NOGROUP" in str(exc)
