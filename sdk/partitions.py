"""Sharded queues: one logical queue spread over K partitions (wire/SPEC.md, section 12.10).

Every key of a queue shares its hash tag, so one queue lives on one Redis Cluster master and
is bounded by that master's CPU. A queue configured with ``partitions={"emails": 3}`` is
three queues under the hood, each with its own hash tag:

- partition 0 is the queue ``emails`` itself (so jobs stored before the queue was sharded
  are still served);
- partition ``i`` (1 ≤ i < K) is the queue ``emails#i.n``, where ``n`` is the smallest
  whole number that puts its hash tag's slot within :data:`SLOT_WINDOW` slots after
  ``slot(emails) + i·16384/K``. The partitions' slots are spread evenly over the 16,384
  slots, so on a cluster whose masters own equal runs of slots (what
  ``redis-cli --cluster create`` and ``--cluster rebalance`` make) K partitions over
  K masters land one on each.

A job's partition is ``CRC16(job id) mod K``: one id always maps to one partition, so
job-id uniqueness holds across the logical queue, and every operation on a job (status,
result, abort, retry) goes straight to its partition. A job's envelope names the logical
queue; its keys are those of its partition.
"""

from __future__ import annotations

from binascii import crc_hqx
from collections.abc import Mapping
from functools import lru_cache
from typing import Final

from .errors import InvalidArgument

__all__ = [
    "MAX_PARTITIONS",
    "SEPARATOR",
    "SLOT_WINDOW",
    "Partitions",
    "check_partitions",
    "hash_slot",
    "partition_names",
]

#: Between a logical queue's name and a partition's number in the partition's name.
SEPARATOR: Final = "#"
#: A partition's slot lies this many slots (or fewer) after its target.
SLOT_WINDOW: Final = 32
#: At most this many partitions per queue (more than any cluster has masters).
MAX_PARTITIONS: Final = 256
_SLOTS: Final = 16384


def hash_slot(tag: str) -> int:
    """The Redis Cluster slot of a key whose hash tag is ``tag`` (CRC16-XMODEM mod 16384)."""
    return crc_hqx(tag.encode(), 0) % _SLOTS


@lru_cache(maxsize=256)
def partition_names(queue: str, count: int) -> tuple[str, ...]:
    """The queue names of the ``count`` partitions of ``queue`` (the first is ``queue``)."""
    start = hash_slot(queue)
    names = [queue]
    for i in range(1, count):
        target = (start + i * _SLOTS // count) % _SLOTS
        n = 0
        while True:
            name = f"{queue}{SEPARATOR}{i}.{n}"
            if (hash_slot(name) - target) % _SLOTS < SLOT_WINDOW:
                break
            n += 1
        names.append(name)
    return tuple(names)


def check_partitions(value: object) -> dict[str, int]:
    """Return a ``{queue name: partition count}`` mapping, or raise InvalidArgument."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"partitions maps queue names to partition counts, not {value!r:.40}")
    checked: dict[str, int] = {}
    for name, count in value.items():
        if not isinstance(name, str) or not name or SEPARATOR in name:
            raise InvalidArgument(
                f"partitions: {name!r:.40} is not a queue name (a non-empty string "
                f"without {SEPARATOR!r})"
            )
        if type(count) is not int or not 1 <= count <= MAX_PARTITIONS:
            raise InvalidArgument(
                f"partitions[{name!r}] must be a whole number from 1 to {MAX_PARTITIONS}, "
                f"not {count!r:.40}"
            )
        checked[name] = count
    return checked


class Partitions:
    """Which partition holds a job, and which partitions make up a queue.

    A name that is not configured (a plain queue, or a partition's own name) is a queue of
    one partition: itself.
    """

    __slots__ = ("counts",)

    def __init__(self, counts: Mapping[str, int] | None = None) -> None:
        self.counts = check_partitions(counts)

    def of_job(self, queue: str, job_id: str) -> str:
        """The name of the partition of ``queue`` that holds job ``job_id``."""
        count = self.counts.get(queue, 1)
        if count == 1:
            return queue
        return partition_names(queue, count)[crc_hqx(job_id.encode(), 0) % count]

    def of_queue(self, queue: str) -> tuple[str, ...]:
        """Every partition of ``queue``, the queue itself first."""
        count = self.counts.get(queue, 1)
        return (queue,) if count == 1 else partition_names(queue, count)

    def logical(self, name: str) -> str:
        """The logical queue a partition belongs to (``name`` itself for a plain queue)."""
        base = name.split(SEPARATOR, 1)[0]
        if base != name and name in self.of_queue(base):
            return base
        return name

    def strays(self, queue: str, known: list[str]) -> list[str]:
        """Names in ``known`` that look like partitions of ``queue`` but are none of its own.

        They hold jobs sent by producers configured with another partition count, which a
        worker with this configuration never takes.
        """
        own = set(self.of_queue(queue))
        head = queue + SEPARATOR
        return sorted(n for n in known if n.startswith(head) and n not in own)
