"""How Python values that JSON and msgpack do not have are written.

The rules (also in ``SPEC.md``, section "Values") are the same for ``json`` and ``msgpack``,
except that msgpack carries ``bytes`` natively, keeps NaN/Infinity, and allows non-string map
keys. Conversions are one-way: a reader gets the plain value (a string for a datetime), so a
job written by Python and one written by any other language look the same to the worker.

=========================  ===============================================================
Python value               written as
=========================  ===============================================================
datetime / date / time     ISO 8601 / RFC 3339 string, offset kept (``2026-01-02T03:04:05+00:00``)
UUID                       canonical lowercase string
Decimal                    its exact decimal string (``"12.50"``)
set / frozenset            array, sorted when the items are orderable
tuple                      array
dataclass instance         object of its fields
Enum member                its value
bytes / bytearray          msgpack: bin; json: refused (UnsupportedValue)
NaN / ±Infinity            msgpack: float; json: null
int outside 64 bits        refused (UnsupportedValue)
anything else              refused (UnsupportedValue)
=========================  ===============================================================
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import orjson

__all__ = ["json_default", "msgpack_default"]


class _Refused(TypeError):
    """Raised inside the encoders' default hooks; turned into UnsupportedValue by the codec."""


def _sorted_if_possible(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        return list(items)


def json_default(obj: Any) -> Any:
    """Convert for orjson (its ``default`` hook) what it does not write itself, or refuse."""
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return _sorted_if_possible(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        raise _Refused("bytes cannot be written as JSON; use the msgpack or pickle format")
    raise _Refused(f"type {type(obj).__qualname__} has no JSON encoding")


def msgpack_default(obj: Any) -> Any:
    """Convert for msgpack (its ``default`` hook) exactly as for JSON, so both formats agree."""
    if isinstance(obj, (datetime, date, time, uuid.UUID)):
        # orjson's rendering is the reference, so json and msgpack produce the same string.
        return orjson.dumps(obj)[1:-1].decode()
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return _sorted_if_possible(obj)
    if isinstance(obj, memoryview):
        return obj.tobytes()
    raise _Refused(f"type {type(obj).__qualname__} has no msgpack encoding")
