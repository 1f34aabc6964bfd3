"""Reading what Redis holds for listings: keys by pattern and dead-letter entries.

Everything here treats what it reads as untrusted: bytes that are not UTF-8 are kept as
backslash escapes and out-of-range numbers fall back to a neutral value.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone

from jobwire.wire import MAX_MS

from .models import DeadLetter
from .protocol import Command, Gen, Primaries

__all__ = ["dead_letter", "glob_escape", "scan", "text"]


def text(value: bytes | str) -> str:
    """Text read from Redis: bytes that are not UTF-8 are kept as backslash escapes."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


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
