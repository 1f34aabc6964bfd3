"""The rules of each envelope field, applied when writing and when reading.

A writer checks every field against the same rules a reader applies, so that a message one
jobwire accepts is never one that every reader must dead-letter. Readers treat every field
as untrusted: wrong types, absurd numbers and over-long strings are an
:class:`InvalidEnvelope` naming the field; ``null`` is the same as absent (SPEC section 3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from .envelope import DEFAULT_QUEUE, MAX_MS, MAX_TRY, WIRE_VERSION, ErrorRecord, Format, JobHeader
from .errors import EncodeError, InvalidEnvelope, UnsupportedVersion

__all__ = [
    "MAX_CAUSE_DEPTH",
    "MAX_NAME_LENGTH",
    "MAX_OUTCOME_LENGTH",
    "check_version",
    "error_fields",
    "error_record",
    "headers_out",
    "int_in",
    "int_out",
    "is_str_map",
    "job_header",
    "name_out",
    "opt_str",
    "req_str",
    "str_out",
]

#: Longest job id or function name a reader accepts.
MAX_NAME_LENGTH: Final = 1024
#: Deepest error-record cause chain a reader accepts (and a writer writes).
MAX_CAUSE_DEPTH: Final = 32
#: Longest ``outcome`` string of a result.
MAX_OUTCOME_LENGTH: Final = 64

_SUPPORTED_TEXT: Final = f"{WIRE_VERSION[0]}.x"
_VERSION_RE: Final = re.compile(r"([0-9]{1,9})\.([0-9]{1,9})")

# ---------------------------------------------------------------- writing


def int_out(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` if it is a plain int in ``lo..hi``, else EncodeError (bool is not an int)."""
    if type(value) is not int or not lo <= value <= hi:
        raise EncodeError(f"{name} must be an integer from {lo} to {hi}, not {value!r:.40}")
    return value


def str_out(name: str, value: Any) -> str:
    """``value`` if it is a string, else EncodeError naming the field."""
    if type(value) is not str:
        raise EncodeError(f"{name} must be a string, not {type(value).__qualname__}")
    return value


def name_out(name: str, value: Any) -> str:
    """``value`` if it is a string a reader accepts as an id or function name."""
    if type(value) is not str or not 0 < len(value) <= MAX_NAME_LENGTH:
        raise EncodeError(f"{name} must be a string of 1 to {MAX_NAME_LENGTH} characters")
    return value


def headers_out(headers: Any) -> dict[str, str]:
    """The headers as a dict, if they map strings to strings."""
    if not isinstance(headers, Mapping):
        raise EncodeError(f"headers must be a mapping, not {type(headers).__qualname__}")
    for k, v in headers.items():
        if type(k) is not str or type(v) is not str:
            raise EncodeError(f"headers must map strings to strings; got {k!r}: {v!r}")
    return dict(headers)


def error_fields(error: ErrorRecord, depth: int) -> dict[str, Any]:
    """An error record (and its causes) as envelope fields."""
    if depth > MAX_CAUSE_DEPTH:
        raise EncodeError(f"error cause chain deeper than {MAX_CAUSE_DEPTH}")
    if not isinstance(error, ErrorRecord):
        raise EncodeError(f"an error must be an ErrorRecord, not {type(error).__qualname__}")
    out: dict[str, Any] = {
        "type": str_out("error type", error.type),
        "message": str_out("error message", error.message),
        "traceback": str_out("error traceback", error.traceback),
    }
    if error.cause is not None:
        out["cause"] = error_fields(error.cause, depth + 1)
    return out


# ---------------------------------------------------------------- reading


def check_version(obj: dict[str, Any]) -> tuple[int, int]:
    """The message's wire version; UnsupportedVersion for another major version."""
    v = obj.get("v")
    if type(v) is not str:
        raise InvalidEnvelope("field 'v' (wire version, e.g. \"1.0\") is missing or not a string")
    known = _KNOWN_VERSIONS.get(v)
    if known is not None:
        return known
    m = _VERSION_RE.fullmatch(v)
    if m is None:
        raise InvalidEnvelope(f"field 'v' must look like MAJOR.MINOR, got {v[:20]!r}")
    major, minor = int(m.group(1)), int(m.group(2))
    if major != WIRE_VERSION[0]:
        raise UnsupportedVersion(v, _SUPPORTED_TEXT)
    if len(_KNOWN_VERSIONS) < 64:  # a few, in practice; never grown without bound
        _KNOWN_VERSIONS[v] = (major, minor)
    return major, minor


#: Version texts read before and found supported (every message carries one, usually "1.0").
_KNOWN_VERSIONS: dict[str, tuple[int, int]] = {}


def job_header(obj: dict[str, Any], fmt: Format, version: tuple[int, int]) -> JobHeader:
    """A job's metadata (everything but its arguments), every field checked."""
    return JobHeader(**header_values(obj, fmt, version))


def header_values(obj: dict[str, Any], fmt: Format, version: tuple[int, int]) -> dict[str, Any]:
    """A job's metadata as keyword arguments of :class:`JobHeader`, every field checked.

    (A decoder adds the arguments and builds the envelope in one step.)
    """
    headers = obj.get("headers", {})
    if headers is None:
        headers = {}
    if not is_str_map(headers) or not all(type(v) is str for v in headers.values()):
        raise InvalidEnvelope("field 'headers' must be an object of string values")
    return {
        "id": req_str(obj, "id", limit=MAX_NAME_LENGTH),
        "function": req_str(obj, "function", limit=MAX_NAME_LENGTH),
        "queue": opt_str(obj, "queue", DEFAULT_QUEUE),
        "enqueued_ms": int_in(obj, "enqueued_ms", 0, MAX_MS),
        "job_try": int_in(obj, "try", 1, MAX_TRY, default=1),
        "defer_until_ms": int_in(obj, "defer_until_ms", 0, MAX_MS, default=None),
        "expires_ms": int_in(obj, "expires_ms", 0, MAX_MS, default=None),
        "format": fmt,
        "headers": headers,
        "version": version,
    }


def is_str_map(value: Any) -> bool:
    """True for a dict whose keys are all strings."""
    return type(value) is dict and all(type(k) is str for k in value)


def req_str(obj: dict[str, Any], name: str, *, limit: int) -> str:
    """Member ``name``: a non-empty string of at most ``limit`` characters."""
    value = obj.get(name)
    if type(value) is not str or not value:
        raise InvalidEnvelope(f"field {name!r} must be a non-empty string")
    if len(value) > limit:
        raise InvalidEnvelope(f"field {name!r} is longer than {limit} characters")
    return value


def opt_str(obj: dict[str, Any], name: str, default: str) -> str:
    """Member ``name`` as a string, ``default`` when absent or null."""
    value = obj.get(name)
    if value is None:
        return default
    if type(value) is not str:
        raise InvalidEnvelope(f"field {name!r} must be a string")
    return value


_REQUIRED: Final[Any] = object()


def int_in(obj: dict[str, Any], name: str, lo: int, hi: int, *, default: Any = _REQUIRED) -> Any:
    """Member ``name`` as an int in ``lo..hi``; absent or null gives ``default`` if optional.

    ``type(...) is int`` refuses bool (an int subclass), floats (also 1.0, NaN, infinity) and
    the floats the JSON parser makes of integers beyond 64 bits.
    """
    value = obj.get(name)
    if value is None and default is not _REQUIRED:
        return default
    if type(value) is not int or not lo <= value <= hi:
        absent = "" if default is _REQUIRED else " (or absent)"
        raise InvalidEnvelope(f"field {name!r} must be an integer from {lo} to {hi}{absent}")
    return value


def error_record(raw: Any, depth: int) -> ErrorRecord:
    """An error object (and its causes) read into an :class:`ErrorRecord`."""
    if depth > MAX_CAUSE_DEPTH:
        raise InvalidEnvelope(f"error cause chain deeper than {MAX_CAUSE_DEPTH}")
    if type(raw) is not dict:
        raise InvalidEnvelope("a failed result needs an 'error' object")
    etype, message, tb = raw.get("type"), raw.get("message"), raw.get("traceback")
    tb = "" if tb is None else tb  # null is the same as absent (SPEC §3)
    if type(etype) is not str or type(message) is not str or type(tb) is not str:
        raise InvalidEnvelope("error 'type', 'message' and 'traceback' must be strings")
    cause_raw = raw.get("cause")
    cause = None if cause_raw is None else error_record(cause_raw, depth + 1)
    return ErrorRecord(type=etype, message=message, traceback=tb, cause=cause)
