"""Reading what Redis holds: a job's envelope and fields, keys by pattern, dead letters.

Everything here treats what it reads as untrusted: bytes that are not UTF-8 are kept as
backslash escapes and out-of-range numbers fall back to a neutral value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Final

from jobwire.wire import MAX_MS

from .errors import RedisCommandError
from .keys import QueueKeys
from .models import DeadLetter
from .protocol import Command, Gen, Pipeline, Primaries

# Lua's %S is C's isspace, as bytes' \s: the same six characters
_ENTRY_AND_TOKEN: Final = re.compile(rb"(\S+) (\S+)")

__all__ = [
    "dead_letter",
    "entry_data",
    "glob_escape",
    "index_entry",
    "job_fields",
    "scan",
    "stored_state",
    "text",
    "with_index",
    "with_indexes",
]


def text(value: bytes | str) -> str:
    """Text read from Redis: bytes that are not UTF-8 are kept as backslash escapes."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def entry_data(fields: Any) -> bytes | None:
    """The envelope a stream entry's fields carry (``data``), or None."""
    data = fields.get(b"data") if isinstance(fields, dict) else None
    return data if isinstance(data, bytes) else None


def job_fields(keys: QueueKeys, job_id: str, *names: str) -> Gen[tuple[bytes | None, list[Any]]]:
    """A job's envelope and the hash ``names`` (``HMGET`` replies, None when missing).

    The envelope of a queued or running job is in its stream entry, that of a deferred one
    (or of one written with plain commands) in its hash's ``data`` (SPEC 12.1). A job queued
    without a hash is found in the index (its ``state`` reads ``queued``); the index is read
    first, since a job only ever moves from it to a hash. The entry is read again when the job
    moved to another one between the reads (a retry).
    """
    for _ in range(3):
        indexed, (row,) = yield from with_index(
            keys, job_id, [Command(("HMGET", keys.job(job_id), "data", "entry", *names))]
        )
        data, entry, values = row[0], row[1], list(row[2:])
        hashless = data is None and entry is None and all(v is None for v in values)
        if hashless and indexed is not None:  # queued without a hash (SPEC 12.1)
            entry, values = indexed, [b"queued" if n == "state" else None for n in names]
        if data is not None or entry is None:
            return data, values
        try:
            found = yield Command(("XRANGE", keys.stream, entry, entry))
        except RedisCommandError:  # an entry id that is none: the hash is not ours to trust
            return None, values
        if found:
            fields = found[0][1]
            if not isinstance(fields, dict) or fields.get(b"job") != job_id.encode():
                return None, values  # an entry of another job's: the id read was not to trust
            return entry_data(fields), values
    return None, values


def with_index(
    keys: QueueKeys, job_id: str, commands: Sequence[Command]
) -> Gen[tuple[bytes | None, list[Any]]]:
    """The job's index field (its entry id, or None) and the replies of ``commands``.

    One round trip, the index read first: a job only ever moves from the index to a hash
    (SPEC 12.1), so a job read this way is never missed between the two. An index bucket
    that is not a hash holds nothing (untrusted, like every key); other errors are raised.
    """
    (entry,), replies = yield from with_indexes([(keys, job_id)], commands)
    return entry, replies


def with_indexes(
    jobs: Sequence[tuple[QueueKeys, str]], commands: Sequence[Command]
) -> Gen[tuple[list[bytes | None], list[Any]]]:
    """:func:`with_index` for several jobs (or one job id in several queues) at once."""
    reads = [Command(("HGET", keys.index(job_id), job_id)) for keys, job_id in jobs]
    replies = list((yield Pipeline((*reads, *commands))))
    for reply in replies[len(reads) :]:
        if isinstance(reply, BaseException):
            raise reply
    entries: list[bytes | None] = []
    for indexed in replies[: len(reads)]:
        if isinstance(indexed, BaseException) and not isinstance(indexed, RedisCommandError):
            raise indexed
        entries.append(index_entry(indexed) if isinstance(indexed, bytes) else None)
    return entries, replies[len(reads) :]


def index_entry(value: bytes) -> bytes:
    """The entry id of an index field's value, ``ENTRY`` or ``ENTRY TOKEN`` (SPEC 12.1).

    Read as the scripts read it: anything but two words is all entry id.
    """
    both = _ENTRY_AND_TOKEN.fullmatch(value)
    return both.group(1) if both else value


def stored_state(indexed: bytes | None, state: bytes | None) -> bytes | None:
    """A job's state from its index field and its hash's ``state`` (see :func:`with_index`).

    A job in the index has no hash, and is queued.
    """
    return state if state is not None or indexed is None else b"queued"


def scan(pattern: str, route: str | None = None) -> Gen[list[bytes]]:
    """Every key matching ``pattern`` (SCAN: O(keys in the database), never blocking Redis).

    On a cluster SCAN sees one node's keys: with ``route`` (a key of the slot that holds
    every match, such as one queue's) the master of that slot is scanned, else every master.
    """
    nodes: list[object] = [None] if route is not None else (yield Primaries())
    found: list[bytes] = []
    for node in nodes:
        cursor: int | bytes = 0
        while True:
            command = ("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            cursor, batch = yield Command(command, route=route, node=node)
            found.extend(batch)
            if int(cursor) == 0:
                break
    return found


def glob_escape(value: str) -> str:
    """``value`` with the glob characters of a SCAN pattern escaped."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in value)


def dead_letter(queue: str, entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> DeadLetter:
    """A dead-letter stream entry as a :class:`DeadLetter` (odd fields read as empty)."""
    raw_at = fields.get(b"at_ms", b"0") or b"0"
    at_ms = int(raw_at) if raw_at.isdigit() and int(raw_at) <= MAX_MS else 0
    job_id = text(fields.get(b"job_id", b""))
    return DeadLetter(
        entry_id=text(entry_id),
        queue_name=queue,
        job_id=job_id or None,
        reason=text(fields.get(b"reason", b"")),
        message=text(fields.get(b"message", b"")),
        data=fields.get(b"data", b""),
        time=datetime.fromtimestamp(at_ms / 1000, tz=timezone.utc),
    )
