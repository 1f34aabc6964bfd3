"""The tagged notation golden vectors use for values JSON cannot hold (see wire/vectors/README).

A tagged value is a JSON object with exactly one key starting with ``$``::

    {"$bytes": "00ff"}             bytes, hex
    {"$int": "18446744073709551616"}  an integer written as a decimal string
    {"$float": "nan" | "inf" | "-inf"}
    {"$datetime": "2026-01-02T03:04:05.123456+00:00"}   (also $date, $time)
    {"$uuid": "…"}  {"$decimal": "12.50"}
    {"$tuple": [...]}  {"$set": [...]}  {"$frozenset": [...]}
    {"$dataclass": {"name": "Point", "fields": {"x": 1}}}
    {"$enum": {"name": "Color", "value": "red"}}
    {"$map": [[1, "one"], [2, "two"]]}   a map whose keys are not all strings
"""

from __future__ import annotations

import dataclasses
import enum
import math
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

_dataclasses: dict[tuple[str, tuple[str, ...]], type] = {}
_enums: dict[tuple[str, Any], type[enum.Enum]] = {}


def _dataclass_type(name: str, fields: tuple[str, ...]) -> type:
    key = (name, fields)
    if key not in _dataclasses:
        _dataclasses[key] = dataclasses.make_dataclass(name, list(fields))
    return _dataclasses[key]


def _enum_type(name: str, value: Any) -> type[enum.Enum]:
    key = (name, value)
    if key not in _enums:
        _enums[key] = enum.Enum(name, {"MEMBER": value})  # type: ignore[assignment]
    return _enums[key]


def untag(v: Any) -> Any:
    """Turn the tagged JSON notation into Python values."""
    if isinstance(v, list):
        return [untag(x) for x in v]
    if isinstance(v, dict):
        if len(v) == 1:
            ((k, x),) = v.items()
            if k.startswith("$"):
                return _untag_one(k, x)
        return {k: untag(x) for k, x in v.items()}
    return v


def _untag_one(tag: str, x: Any) -> Any:
    if tag == "$bytes":
        return bytes.fromhex(x)
    if tag == "$int":
        return int(x)
    if tag == "$float":
        return float(x)
    if tag == "$datetime":
        return datetime.fromisoformat(x)
    if tag == "$date":
        return date.fromisoformat(x)
    if tag == "$time":
        return time.fromisoformat(x)
    if tag == "$uuid":
        return uuid.UUID(x)
    if tag == "$decimal":
        return Decimal(x)
    if tag == "$tuple":
        return tuple(untag(x))
    if tag == "$set":
        return set(untag(x))
    if tag == "$frozenset":
        return frozenset(untag(x))
    if tag == "$map":
        return {untag(key): untag(item) for key, item in x}
    if tag == "$dataclass":
        fields = untag(x["fields"])
        return _dataclass_type(x["name"], tuple(fields))(**fields)
    if tag == "$enum":
        return _enum_type(x["name"], x["value"])["MEMBER"]
    raise ValueError(f"unknown tag {tag}")


def tag(v: Any) -> Any:
    """Turn Python values into the tagged JSON notation (inverse of :func:`untag`)."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v if abs(v) <= 2**53 else {"$int": str(v)}
    if isinstance(v, float):
        return v if math.isfinite(v) else {"$float": str(v)}
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, datetime):
        return {"$datetime": v.isoformat()}
    if isinstance(v, date):
        return {"$date": v.isoformat()}
    if isinstance(v, time):
        return {"$time": v.isoformat()}
    if isinstance(v, uuid.UUID):
        return {"$uuid": str(v)}
    if isinstance(v, Decimal):
        return {"$decimal": str(v)}
    if isinstance(v, enum.Enum):
        return {"$enum": {"name": type(v).__name__, "value": v.value}}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        fields = {f.name: tag(getattr(v, f.name)) for f in dataclasses.fields(v)}
        return {"$dataclass": {"name": type(v).__name__, "fields": fields}}
    if isinstance(v, tuple):
        return {"$tuple": [tag(x) for x in v]}
    if isinstance(v, frozenset):
        return {"$frozenset": [tag(x) for x in sorted(v)]}
    if isinstance(v, set):
        return {"$set": [tag(x) for x in sorted(v)]}
    if isinstance(v, list):
        return [tag(x) for x in v]
    if isinstance(v, dict):
        if all(isinstance(k, str) for k in v):
            return {k: tag(x) for k, x in v.items()}
        return {"$map": [[tag(k), tag(x)] for k, x in v.items()]}
    raise TypeError(f"no tag for {type(v)}")


def same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN (vectors contain NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(type(a) is type(b) and a == b)
