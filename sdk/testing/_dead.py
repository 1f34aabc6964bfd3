"""The in-memory twin's dead letters: listing, re-queueing and deleting them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobwire.errors import JobNotFound
from jobwire.models import DeadLetter
from jobwire.prepare import Prepared
from jobwire.producer import JobRef, now_ms

from ._store import MemoryQueue, MemoryStore, immediate

if TYPE_CHECKING:
    from jobwire.keys import QueueKeys
    from jobwire.wire import Codec

__all__ = ["MemoryDeadLetters"]


class MemoryDeadLetters:
    """``dead_letters``, ``requeue_dead_letter`` and ``delete_dead_letter`` on a store."""

    store: MemoryStore

    if TYPE_CHECKING:
        codec: Codec

        def keys(self, queue_name: str | None = None) -> QueueKeys: ...
        def _refreshed(
            self, queue_name: str | None, now: int | None = None
        ) -> tuple[str, MemoryQueue]: ...
        def _add(self, job: Prepared, now: int, once: tuple[str, int] | None = None) -> bool: ...

    @immediate
    def dead_letters(self, queue_name: str | None, limit: int) -> list[DeadLetter]:
        """Dead-letter entries of a queue, newest first."""
        with self.store._cond:
            return list(reversed(self._refreshed(queue_name)[1].dead.values()))[:limit]

    @immediate
    def requeue_dead_letter(self, entry_id: str, queue_name: str | None) -> JobRef | None:
        """Enqueue a dead-lettered message again, unchanged."""
        now = now_ms()
        with self.store._cond:
            name, queue = self._refreshed(queue_name, now)
            letter = queue.dead.get(entry_id)
            if letter is None:
                raise JobNotFound(f"no dead-letter entry {entry_id!r} in queue {name!r}")
            job_id = self.codec.read_job_header(letter.data).id
            prepared = Prepared(job_id, self.keys(name), letter.data, None, None)
            if not self._add(prepared, now):
                return None
            del queue.dead[entry_id]
            return (job_id, name)

    @immediate
    def delete_dead_letter(self, entry_id: str, queue_name: str | None) -> bool:
        """Delete one dead-letter entry; False if it did not exist."""
        with self.store._cond:
            removed = self._refreshed(queue_name)[1].dead.pop(entry_id, None)
            if removed is not None:
                self.store._changed()
            return removed is not None
