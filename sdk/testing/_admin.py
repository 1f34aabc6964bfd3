"""The in-memory twin of :mod:`jobwire.admin`: pausing queues and their running jobs.

A paused queue of the twin runs nothing in eager mode or ``run_jobs`` (its jobs stay
queued, as a worker would leave them), and resumes like a Redis queue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobwire.models import JobInfo, JobStatus

from ._store import MemoryStore, immediate

if TYPE_CHECKING:
    from jobwire.keys import QueueKeys
    from jobwire.wire import JobHeader

__all__ = ["MemoryAdmin"]


class MemoryAdmin:
    """``pause``, ``resume``, ``is_paused`` and ``running_jobs`` on a :class:`MemoryStore`."""

    store: MemoryStore

    if TYPE_CHECKING:

        def keys(self, queue_name: str | None = None) -> QueueKeys: ...
        def _decode_job(self, data: bytes) -> JobHeader: ...

    def paused(self, queue_name: str | None) -> bool:
        """True while the queue is paused (a plain method, for the eager runner)."""
        with self.store._cond:
            return self.keys(queue_name).queue in self.store._paused

    @immediate
    def pause(self, queue_name: str | None, now_ms: int) -> bool:
        """Pause a queue; False when it was paused already."""
        name = self.keys(queue_name).queue
        with self.store._cond:
            new = name not in self.store._paused
            self.store._paused.add(name)
            return new

    @immediate
    def resume(self, queue_name: str | None) -> bool:
        """Resume a paused queue; False when it was not paused."""
        name = self.keys(queue_name).queue
        with self.store._cond:
            was = name in self.store._paused
            self.store._paused.discard(name)
            self.store._changed()
            return was

    @immediate
    def is_paused(self, queue_name: str | None) -> bool:
        """True while the queue is paused."""
        return self.paused(queue_name)

    @immediate
    def running_jobs(self, queue_name: str | None, limit: int) -> list[JobInfo]:
        """The queue's jobs in progress, oldest start first."""
        name = self.keys(queue_name).queue
        with self.store._cond:
            queue = self.store._queue(name)
            active = sorted(
                (j for j in queue.jobs.values() if j.state == "active"),
                key=lambda j: (j.started_ms or 0, j.order),
            )[:limit]
            rows = [(j.data, j.tries, j.worker, j.started_ms) for j in active]
        return [
            JobInfo.from_stored(
                self._decode_job(data),
                JobStatus.IN_PROGRESS,
                tries=tries,
                worker=worker,
                started_ms=started,
            )
            for data, tries, worker, started in rows
        ]
