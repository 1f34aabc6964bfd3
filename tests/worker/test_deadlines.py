"""Job timeouts: counted from the real start, shared timers, nothing left behind."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from jobwire.worker.deadlines import MIN_SLICE, Deadlines


async def _run(deadlines: Deadlines, seconds: float | None, work: float, armed: bool = True) -> str:
    deadline = deadlines.deadline(seconds)
    try:
        with deadline:
            if armed:
                deadline.arm()
            await asyncio.sleep(work)
        return "done"
    except TimeoutError:
        assert deadline.expired()
        return "timed out"


def test_a_job_past_its_time_is_cancelled_soon_after_and_others_are_not() -> None:
    async def main() -> tuple[list[str], float, int]:
        deadlines = Deadlines()
        started = time.monotonic()
        slow = asyncio.ensure_future(_run(deadlines, 0.05, 10))
        quick = [asyncio.ensure_future(_run(deadlines, 0.05, 0.001)) for _ in range(20)]
        outcomes = await asyncio.gather(slow, *quick)
        took = time.monotonic() - started
        # a loaded machine may arm some quick jobs a slice after the slow one: that slice's
        # timer fires a little after the slow job timed out (but must fire and go). Every
        # timer is due before this sleep ends, and the loop runs timers in their order.
        await asyncio.sleep(0.05 + 2 * MIN_SLICE)
        return outcomes, took, deadlines.pending()

    outcomes, took, left = asyncio.run(main())
    assert outcomes == ["timed out"] + ["done"] * 20
    assert 0.05 <= took < 0.05 + MIN_SLICE + 0.5  # (slack for a loaded machine)
    assert left == 0  # each slice's timer fired and went


def test_jobs_whose_deadlines_fall_together_share_one_timer() -> None:
    async def main() -> int:
        deadlines = Deadlines()
        tasks = [asyncio.ensure_future(_run(deadlines, 30, 0.05)) for _ in range(100)]
        await asyncio.sleep(0.01)
        shared = deadlines.pending()
        await asyncio.gather(*tasks)
        for _ in range(1000):  # jobs that end at once, one after the other
            await _run(deadlines, 30, 0)
        assert deadlines.pending() <= 3  # slices of 0.3 s: the timers are not one per job
        return shared

    assert 1 <= asyncio.run(main()) <= 2  # (their start may straddle a slice boundary)


def test_deadlines_work_again_when_the_worker_runs_on_a_new_loop() -> None:
    deadlines = Deadlines()
    assert asyncio.run(_run(deadlines, 30, 0)) == "done"  # leaves a timer on that loop
    assert asyncio.run(_run(deadlines, 0.05, 10)) == "timed out"

    async def armed_here() -> bool:
        deadline = deadlines.deadline(30)  # the same slice as the first loop's, most likely
        with deadline:
            deadline.arm()
            timers = asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]
            return any(t._callback == deadlines._fire for t in timers)

    assert asyncio.run(armed_here())  # a timer on this loop, not only on the closed one


@pytest.mark.parametrize("seconds", [None, math.inf])
def test_no_deadline_or_an_endless_one_never_expires(seconds: float | None) -> None:
    async def main() -> tuple[str, int]:
        deadlines = Deadlines()
        outcome = await _run(deadlines, seconds, 0.02)
        return outcome, deadlines.pending()

    assert asyncio.run(main()) == ("done", 0)


def test_time_counts_from_the_arming_not_from_entering() -> None:
    async def main() -> str:
        deadlines = Deadlines()
        deadline = deadlines.deadline(0.05)
        with deadline:
            await asyncio.sleep(0.1)  # waiting for a thread or process: not counted
            deadline.arm()
            await asyncio.sleep(0.01)
        return "done"

    assert asyncio.run(main()) == "done"
