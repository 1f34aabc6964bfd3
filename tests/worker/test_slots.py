"""Slots: what bounds the jobs a worker runs, and what a job being recorded still holds."""

from __future__ import annotations

from typing import Any

from jobwire.models import Delivery
from jobwire.worker.state import Running, Slots


def running(job_id: str, entry: str = "1-0") -> Running:
    queue: Any = None  # the slots never look at the queue
    return Running(Delivery(entry, job_id, b"", 1, "default"), queue)


def test_a_job_being_recorded_frees_its_slot_but_stays_leased() -> None:
    slots = Slots(2)
    a, b = running("a"), running("b")
    slots.add(a)
    slots.add(b)
    assert slots.free() == 0
    slots.settle(a)
    # the next job may start while a's result is written, and a's lease is still renewed
    assert slots.free() == 1
    assert a in slots.snapshot()
    slots.settle(a)  # once is enough
    assert slots.free() == 1
    slots.remove(a)
    assert slots.free() == 1 and a not in slots.snapshot()
    slots.remove(b)
    assert slots.free() == 2


def test_at_most_max_jobs_more_are_held_while_results_are_written() -> None:
    slots = Slots(2)
    for name in "ab":
        slots.add(job := running(name))
        slots.settle(job)
    assert slots.free() == 2  # both recording: two more may run
    slots.add(running("c"))
    slots.add(running("d"))
    # a Redis that takes no results keeps the worker from taking ever more jobs
    assert slots.free() == 0


def test_a_replaced_attempt_no_longer_counts_as_recording() -> None:
    slots = Slots(1)
    first = running("a", "1-0")
    slots.add(first)
    slots.settle(first)
    retry = running("a", "2-0")  # its retry, delivered before the first task has ended
    slots.add(retry)
    assert slots.free() == 0  # the retry runs and holds the slot
    slots.remove(first)  # the first attempt's task ends: the retry is not forgotten
    assert slots.snapshot() == [retry] and slots.free() == 0
    slots.settle(retry)
    slots.remove(retry)
    assert slots.free() == 1 and slots.settling == 0
