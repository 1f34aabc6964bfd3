"""Pickle, the trusted-Redis format: arguments and values through cloudpickle.

Writing uses cloudpickle (functions and lambdas pickle too); reading uses the standard
``pickle.loads`` and happens only when a codec accepts ``pickle`` explicitly, because
unpickling runs code. A pickle job is a msgpack map with its arguments in ``payload``.
"""

from __future__ import annotations

import pickle
from typing import Any, Final

import cloudpickle

from .envelope import JobHeader
from .errors import InvalidEnvelope, MalformedMessage, UnsupportedValue
from .fields import is_str_map

__all__ = ["pickle_args", "pickle_value", "unpickle", "unpickle_args"]

_PICKLE_PROTOCOL: Final = 5


def pickle_value(value: Any, location: str) -> bytes:
    """``value`` pickled; UnsupportedValue naming ``location`` when it cannot be."""
    try:
        data: bytes = cloudpickle.dumps(value, protocol=_PICKLE_PROTOCOL)
    except Exception as exc:
        raise UnsupportedValue(
            f"cannot pickle {location}: {exc}", location=location, format="pickle"
        ) from exc
    return data


def pickle_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """A job's ``(args, kwargs)`` pickled; on failure the error names the argument."""
    try:
        data: bytes = cloudpickle.dumps((tuple(args), kwargs), protocol=_PICKLE_PROTOCOL)
    except Exception:
        pass  # find the argument to blame below
    else:
        return data
    for i, value in enumerate(args):
        pickle_value(value, f"args[{i}]")
    for k, value in kwargs.items():
        pickle_value(value, f"kwargs[{k!r}]")
    return pickle_value((tuple(args), kwargs), "arguments")


def unpickle(payload: bytes, header: JobHeader | None) -> Any:
    """Unpickle (runs code: only for formats the codec accepts); MalformedMessage if broken."""
    try:
        return pickle.loads(payload)
    except Exception as exc:
        raise MalformedMessage(f"pickle payload cannot be loaded: {exc!r}", header=header) from None


def unpickle_args(obj: dict[str, Any], header: JobHeader) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A pickle job's ``(args, kwargs)`` from its ``payload`` field, shape checked."""
    payload = obj.get("payload")
    if type(payload) is not bytes:
        raise InvalidEnvelope("a pickle job needs a binary 'payload' field", header=header)
    loaded = unpickle(payload, header)
    if (
        type(loaded) is not tuple
        or len(loaded) != 2
        or type(loaded[0]) not in (tuple, list)
        or not is_str_map(loaded[1])
    ):
        raise InvalidEnvelope("pickle payload must hold (args, kwargs)", header=header)
    return tuple(loaded[0]), loaded[1]
