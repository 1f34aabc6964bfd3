"""What the parts of a worker share: the jobs it runs, its queues and its counters."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from jobwire.consumer import Consumer
from jobwire.models import Delivery
from jobwire.packing import Lane

if TYPE_CHECKING:
    from .recorder import GroupCommit

__all__ = ["AbortEvent", "QueueState", "Running", "Slots", "Stats"]

_CONDITION_LOCK = threading.Lock()


class AbortEvent(threading.Event):
    """A job's ``ctx["aborted"]``: a :class:`threading.Event` whose lock is made on first use.

    Most jobs are never aborted nor wait on it, and a condition with its lock is the
    costliest part of starting a job otherwise (about 3.5 µs of a no-op job's 130).
    """

    def __init__(self) -> None:  # no super().__init__(): the condition comes later
        self._flag = False

    @property
    def _cond(self) -> threading.Condition:
        cond: threading.Condition | None = self.__dict__.get("_lazy_cond")
        if cond is None:
            with _CONDITION_LOCK:  # one condition, even when two threads ask at once
                cond = self.__dict__.setdefault("_lazy_cond", threading.Condition(threading.Lock()))
        return cond


@dataclass(eq=False)
class QueueState:
    """One queue a worker serves, with its consumer and fetch bookkeeping."""

    name: str
    consumer: Consumer
    next_due: int | None = None
    results: GroupCommit | None = None
    # set when leases may have expired while every slot was busy: the next free slot
    # goes to a reclaimed job before any new one, so a dead worker's jobs never starve
    reclaim_due: bool = False
    # the queue's paused flag as last read, and when (time.monotonic()): see Fetcher
    paused: bool = False
    paused_read_at: float = float("-inf")
    # the last fetch took jobs (assumed at first): it competes for slots (Fetcher._share)
    busy: bool = True
    # connections the fetch loop and the group commit keep (see jobwire.packing.Lane)
    fetch_lane: Lane | None = None
    commit_lane: Lane | None = None


@dataclass(eq=False)
class Running:
    """A job this worker is running (from its start until its outcome is recorded)."""

    delivery: Delivery
    queue: QueueState
    task: asyncio.Task[None] | None = None
    function: str = "?"
    executing: bool = False  # its function is running (abortable)
    abort_event: threading.Event = field(default_factory=AbortEvent)
    aborted: bool = False
    lost: bool = False  # another worker took its lease over
    settling: bool = False  # its outcome is being recorded: the lease may end any moment


@dataclass
class Stats:
    """Counts since the worker started, as the health record reports them."""

    complete: int = 0
    failed: int = 0
    retried: int = 0
    aborted: int = 0
    dead_lettered: int = 0
    handed_back: int = 0
    reclaimed: int = 0
    leases_lost: int = 0

    def counts(self) -> dict[str, int]:
        """Every counter by name."""
        return asdict(self)


class Slots:
    """The running jobs, bounded by ``max_jobs``; waiters wake when one ends.

    A job whose outcome is being recorded (settling) gives its slot up: its function has
    ended, and the next job may run while Redis writes the result, so that the worker's
    own work and Redis's overlap. It stays among the running jobs (its lease is renewed)
    until the outcome is written; at most ``max_jobs`` more may be settling.

    The lease keeper's thread reads the running jobs too, so changes take a lock.
    """

    def __init__(self, max_jobs: int) -> None:
        self.max_jobs = max_jobs
        self.running: dict[str, Running] = {}
        self.ended = 0
        self.reserved = 0  # slots a fetch in flight will fill (see reserving)
        self.settling = 0  # running jobs whose outcome is being recorded (see settle)
        self._lock = threading.Lock()
        self._changed = asyncio.Event()

    def free(self) -> int:
        """How many more jobs may start now.

        Slots a fetch in flight holds are not free; those of settling jobs are, as long as
        the worker holds no more than twice ``max_jobs`` jobs in all.
        """
        held = len(self.running) + self.reserved
        return min(self.max_jobs - held + self.settling, 2 * self.max_jobs - held)

    @contextlib.contextmanager
    def reserving(self, wanted: int) -> Iterator[int]:
        """Hold up to ``wanted`` free slots while a fetch for them is in flight.

        Several fetch loops (a worker of several queues or partitions) then never take
        more jobs together than there are slots. Yields how many were held; they are free
        again afterwards, once the jobs fetched have started (``add``) in their place.
        """
        held = max(0, min(wanted, self.free()))
        self.reserved += held
        try:
            yield held
        finally:
            self.reserved -= held
            self.wake()

    def add(self, r: Running) -> None:
        """Register a job that starts (replacing an earlier attempt of the same job)."""
        with self._lock:
            earlier = self.running.get(r.delivery.job_id)
            if earlier is not None and earlier.settling:
                self.settling -= 1
            self.running[r.delivery.job_id] = r

    def settle(self, r: Running) -> None:
        """A job's function ended and its outcome is being recorded: its slot is free."""
        if r.settling:
            return
        r.settling = True
        with self._lock:
            if self.running.get(r.delivery.job_id) is r:
                self.settling += 1
        self.wake()

    def remove(self, r: Running) -> None:
        """Forget a job that ended, unless a later attempt of it replaced it already."""
        with self._lock:
            if self.running.get(r.delivery.job_id) is r:
                del self.running[r.delivery.job_id]
                if r.settling:
                    self.settling -= 1
        self.ended += 1
        self.wake()

    def snapshot(self) -> list[Running]:
        """The running jobs now (safe from any thread)."""
        with self._lock:
            return list(self.running.values())

    def wake(self) -> None:
        """Make every waiter look at its condition again."""
        self._changed.set()

    def reset(self) -> None:
        """Bind to the running event loop (a worker may be started more than once)."""
        self._changed = asyncio.Event()
        self.settling = sum(1 for r in self.running.values() if r.settling)

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds; checked again whenever a job ends."""
        while not condition():
            self._changed.clear()
            if condition():
                return
            await self._changed.wait()
