"""Reading what Redis holds: a job's envelope and fields, keys by pattern, dead letters.

Everything here treats what it reads as untrusted: bytes that are not UTF-8 are kept as
backslash escapes and out-of-range numbers fall back to a neutral value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from jobwire.wire import MAX_MS

from .errors import RedisCommandError
from .models import DeadLetter
from .protocol import Command, Gen, Primaries

__all__ = ["dead_letter", "entry_data", "glob_escape", "job_fields", "scan", "text"]


def text(value: bytes | str) -> str:
    """Text read from Redis: bytes that are not UTF-8 are kept as backslash escapes."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def entry_data(fields: Any) -> bytes | None:
    """The envelope a stream entry's fields carry (``data``), or None."""
    data = fields.get(b"data") if isinstance(fields, dict) else None
    return data if isinstance(data, bytes) else None


def job_fields(stream: str, job_key: str, *names: str) -> Gen[tuple[bytes | None, list[Any]]]:
    """A job's envelope and the hash ``names`` (``HMGET`` replies, None when missing).

    The envelope of a queued or running job is in its stream entry, that of a deferred one
    (or of one written with plain commands) in its hash's ``data`` (SPEC 12.1). The entry is
    read again when the job moved to another one between the two reads (a retry).
    """
    for _ in range(3):
        row = yield Command(("HMGET", job_key, "data", "entry", *names))
        data, entry = row[0], row[1]
        if data is not None or entry is None:
            return data, list(row[2:])
        try:
            found = yield Command(("XRANGE", stream, entry, entry))
        except RedisCommandError:  # an entry id that is none: the hash is not ours to trust
            return None, list(row[2:])
        if found:
            return entry_data(found[0][1]), list(row[2:])
    return None, list(row[2:])


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
