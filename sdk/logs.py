"""Log lines as JSON, one object per line: :class:`JsonFormatter` (``--log-format json``).

Each line holds ``time`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``; the worker's
job lines add the job's fields, which it passes as ``extra={"job": {...}}``: ``job_id``,
``function``, ``queue``, ``try``, ``outcome``, ``duration`` (seconds), ``trace_id`` (from a
W3C ``traceparent`` header), ``error_type`` and ``error_message``, and the traceback as
``exc_info``. Any record's own exception is ``exc_info`` too. Use it in your own logging
configuration as well::

    handler = logging.StreamHandler()
    handler.setFormatter(jobwire.logs.JsonFormatter())
    logging.getLogger("jobwire").addHandler(handler)

Text from Redis may hold anything: the lines are JSON with every control character escaped
(also those JSON allows raw, such as U+009B), so printing them to a terminal is safe.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import orjson

__all__ = ["JOB_FIELDS", "JsonFormatter", "json_text", "trace_id"]

#: The fields a job log line may carry (in ``extra={"job": {...}}``), in the order written.
JOB_FIELDS = (
    "job_id", "function", "queue", "try", "outcome", "duration", "retry_in", "trace_id",
    "error_type", "error_message",
)  # fmt: skip
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


def trace_id(headers: Mapping[str, str]) -> str | None:
    """The trace id of a W3C ``traceparent`` header, or None when there is no valid one."""
    value = headers.get("traceparent")
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None or match.group(1) == "0" * 32:
        return None
    return match.group(1)


def json_text(value: Any, *, indent: bool = False) -> str:
    r"""``value`` as JSON text, every non-printable character escaped as ``\uXXXX``."""
    option = orjson.OPT_INDENT_2 if indent else 0
    text = orjson.dumps(value, default=str, option=option).decode()
    if indent:
        return "\n".join(_escaped(line) for line in text.split("\n"))
    return _escaped(text)


def _escaped(text: str) -> str:
    # JSON itself needs only C0 controls escaped (orjson does); a terminal also acts on C1
    # controls and bidi overrides. Outside strings JSON text is printable ASCII, so escaping
    # any other non-printable character keeps the document equal.
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
            continue
        code = ord(ch)
        if code > 0xFFFF:  # a surrogate pair, as JSON spells characters beyond the BMP
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


class JsonFormatter(logging.Formatter):
    """Formats each record as one line of JSON (see the module's documentation)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON object on one line."""
        message = record.getMessage()
        job = getattr(record, "job", None)
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        traceback = ""
        if isinstance(job, Mapping):
            for name in JOB_FIELDS:
                value = job.get(name)
                if value is not None:
                    out[name] = value
            traceback = job.get("traceback") or ""
            if traceback and message.endswith("\n" + traceback):
                # the text line carries the traceback below the message; here it has its field
                out["message"] = message[: -len(traceback) - 1]
        if record.exc_info:
            traceback = self.formatException(record.exc_info)
        elif record.exc_text:
            traceback = record.exc_text
        if traceback:
            out["exc_info"] = traceback
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json_text(out)
