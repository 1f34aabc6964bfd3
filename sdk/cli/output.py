"""What every command shares: exit statuses and making text from Redis safe to print."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

import jobwire
from jobwire.logs import json_text
from jobwire.wire import WireError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_NEGATIVE",
    "EXIT_REDIS",
    "ODD_DATA",
    "REDIS_DOWN",
    "clip",
    "json_text",
    "safe",
    "when",
]

#: Exit statuses of the ``jobwire`` command (besides 0, success).
EXIT_NEGATIVE = 1  # unhealthy (--check), no such job or entry, nothing done
EXIT_BAD_INPUT = 2  # bad arguments or settings (argparse uses 2 as well)
EXIT_REDIS = 3  # Redis unreachable, refused the login, or refused a command

#: Errors that end a command (exit 3) rather than being shown next to odd data.
REDIS_DOWN = (jobwire.RedisUnavailable, jobwire.RedisAuthError, BrokenPipeError)
#: What odd data in Redis raises; a listing shows it in place and goes on.
ODD_DATA = (jobwire.JobwireError, WireError, ValueError, TypeError, KeyError)


def safe(text: str) -> str:
    """Text from Redis made safe for a terminal: control characters are escaped."""
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def clip(value: Any, limit: int = 200) -> str:
    """``repr`` of a value, cut to ``limit`` characters (escaped later with :func:`safe`)."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(moment: datetime | None) -> str:
    """A UTC time for people: ``2026-11-24 01:21:07.123 UTC``."""
    if moment is None:
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def positive_int(text: str) -> int:
    """An argparse type: a whole number from 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number from 1, not {text!r}")
    return value
