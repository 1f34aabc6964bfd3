"""Slots: what bounds the jobs a worker runs, and what a job being recorded still holds."""

from __future__ import annotations

import threading
from typing import Any

from jobwire.models import Delivery
from jobwire.worker.state import AbortEvent, Running, Slots


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


def test_a_jobs_abort_event_is_a_thread_event_made_on_first_use() -> None:
    """ctx["aborted"]: a thread waiting on it wakes when the job is aborted, as before."""
    event = AbortEvent()
    assert isinstance(event, threading.Event) and not event.is_set()
    assert not event.wait(0.01)
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(event.wait(10)))
    waiter.start()
    event.set()
    waiter.join(10)
    assert woke == [True] and event.is_set() and event.wait(0)
    event.clear()
    assert not event.is_set()
