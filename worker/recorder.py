"""Recording how jobs end: results (group commit), retries, dead letters, hand-backs.

Every call here is safe to send twice (see SPEC 12.5), so each one is retried while Redis is
unreachable or out of memory, with a backoff and a rate-limited warning: an outcome is never
dropped because Redis blinked. Results that become ready together go out in one ``finish``
call (:class:`GroupCommit`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from jobwire.consumer import GRACE_OVER, HANDED_BACK
from jobwire.errors import RedisOutOfMemory, RedisUnavailable
from jobwire.models import Delivery
from jobwire.packing import Lane
from jobwire.protocol import Gen
from jobwire.wire import Codec, JobHeader, ResultEnvelope

from .attempt import Final, Run, dead_letter_result, encode_result
from .state import QueueState, Running, Stats
from .supervisor import RateLimitedLog

__all__ = ["DEAD_LETTER_RESULT_TTL", "GroupCommit", "Recorder"]

logger = logging.getLogger("jobwire.worker")
#: Seconds the failed result of a dead-lettered job is kept for a client waiting on it. The
#: dead-letter stream (capped) is the lasting record, so a flood of bad messages leaves no
#: lasting per-message keys.
DEAD_LETTER_RESULT_TTL = 60.0
#: Hand-backs of a job for an unknown function wait 0.5 s, 1 s, 2 s ... up to the maximum.
HAND_BACK_DELAY = 0.5
HAND_BACK_MAX_DELAY = 5.0  # short: each hand-back is a fresh draw among the workers

#: (delivery, encoded result, seconds to keep it, the result it holds: for the job's event)
Item = tuple[Delivery, bytes, "float | None", ResultEnvelope]


class GroupCommit:
    """Sends the results that become ready in the same moment in one call.

    The first result starts a flush on the next turn of the loop; results arriving while a
    flush is in flight go in the next one. Under load this turns one round trip per job into
    one per batch; an isolated job still goes out at once.
    """

    def __init__(self, send: Callable[[list[Item]], Awaitable[None]]) -> None:
        self._send = send
        self._items: list[tuple[Item, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, item: Item) -> None:
        """Queue ``item`` for the next flush and wait until it is sent."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._items.append((item, done))
        if self._task is None:
            self._task = loop.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._items:
                batch, self._items = self._items, []
                try:
                    await self._send([item for item, _ in batch])
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._task = None


class Recorder:
    """Writes outcomes for one worker."""

    def __init__(
        self,
        *,
        run: Callable[..., Awaitable[Any]],  # (generator[, lane])
        pause: Callable[[float], Awaitable[None]],
        codec: Codec,
        worker: str,
        now_ms: Callable[[], int],
        stats: Stats,
        keep_result: float,
        grace: float,
    ) -> None:
        self._run = run
        self._pause = pause
        self.codec = codec
        self.worker = worker
        self.now_ms = now_ms
        self.stats = stats
        self.keep_result = keep_result
        self.grace = grace
        self.log = RateLimitedLog()

    async def retrying(
        self, step: Callable[[], Gen[Any]], what: str, lane: Lane | None = None
    ) -> Any:
        """Run a protocol step (made afresh each try) until Redis takes it, with backoff."""
        delay = 0.1
        while True:
            try:
                return await self._run(step(), lane)
            except (RedisUnavailable, RedisOutOfMemory) as exc:
                self.log.log(
                    logging.WARNING, f"retry:{what}:{type(exc).__name__}",
                    "cannot %s yet (%s), retrying in %.1fs: %s", what, type(exc).__name__,
                    delay, exc,
                )  # fmt: skip
                await self._pause(delay)
                delay = min(delay * 2, 5.0)

    def result(self, run: Run, final: Final, started_ms: int) -> tuple[bytes, ResultEnvelope]:
        """The encoded result of an attempt and the envelope those bytes hold."""
        envelope = ResultEnvelope.of(
            run.job,
            function=run.function.name,
            job_try=run.job_try,
            outcome=final.outcome,
            started_ms=started_ms,
            finished_ms=self.now_ms(),
            worker=self.worker,
            value=final.value,
            error=final.error,
            exception=final.exception,
        )
        return encode_result(self.codec, envelope)

    async def finish(self, r: Running, run: Run, final: Final, started_ms: int) -> None:
        """Record a final result (group-committed with others of its queue)."""
        data, envelope = self.result(run, final, started_ms)
        assert r.queue.results is not None
        await r.queue.results.add((r.delivery, data, run.keep, envelope))
        outcome = envelope.outcome
        if outcome == "success":
            self.stats.complete += 1
        elif outcome == "aborted":
            self.stats.aborted += 1
        else:
            self.stats.failed += 1

    async def send_results(self, queue: QueueState, items: list[Item]) -> None:
        """The group commit's sender for one queue."""
        consumer = queue.consumer
        encoded = [(d, data, keep) for d, data, keep, _ in items]
        results = [result for *_, result in items]
        await self.retrying(
            lambda: consumer.finish_encoded(encoded, results), "store results", queue.commit_lane
        )

    async def retry(self, r: Running, run: Run, final: Final, started_ms: int) -> None:
        """Record a failed attempt and queue the job again, ``final.retry_in`` from now."""
        _, envelope = self.result(run, final, started_ms)
        self.stats.retried += 1
        consumer, d = r.queue.consumer, r.delivery
        await self.retrying(lambda: consumer.retry(d, envelope, run.keep, final.retry_in), "retry")

    async def dead_letter(
        self, r: Running, reason: str, message: str, header: JobHeader | None
    ) -> None:
        """Move a message that cannot run to the dead letters, alone.

        A client waiting for it gets a failed result naming the reason, kept briefly.
        """
        d = r.delivery
        self.stats.dead_lettered += 1
        self.log.log(
            logging.WARNING, f"dead:{reason}", "dead-lettering %r: %s (%s)",
            d.job_id, reason, message,
        )  # fmt: skip
        result = None
        if header is not None:
            result = dead_letter_result(header, reason, message, self.worker, self.now_ms())
            try:
                self.codec.encode_result(result)
            except Exception:  # an absurd header: the dead letter itself is what matters
                result = None
        keep = min(self.keep_result, DEAD_LETTER_RESULT_TTL)
        consumer = r.queue.consumer
        await self.retrying(
            lambda: consumer.dead_letter(
                reason=reason, message=message, data=d.data, delivery=d, result=result,
                keep_result=keep,
            ),
            "dead-letter",
        )  # fmt: skip

    async def hand_back(self, r: Running, job: JobHeader, message: str) -> None:
        """Give a job this worker cannot run back to its queue, for a worker that can.

        After ``grace`` seconds of hand-backs it is dead-lettered ``unknown_function``.
        """
        consumer, d = r.queue.consumer, r.delivery
        state = await self.retrying(
            lambda: consumer.hand_back(d, HAND_BACK_DELAY, HAND_BACK_MAX_DELAY, self.grace),
            "hand back",
        )
        if state == GRACE_OVER:
            await self.dead_letter(
                r, "unknown_function", f"{message} (handed back for {self.grace:.0f}s)", job
            )
        elif state == HANDED_BACK:
            self.stats.handed_back += 1
            self.log.log(
                logging.WARNING, f"unknown:{job.function}",
                "%s: handed back for a worker that has it (dead-lettered after %.0fs)",
                message, self.grace,
            )  # fmt: skip

    async def requeue(self, r: Running) -> None:
        """Hand an unfinished job back at shutdown, without spending a try."""
        await self._run(r.queue.consumer.requeue(r.delivery))
