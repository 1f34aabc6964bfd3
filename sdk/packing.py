"""Command packing in C for redis-py's asyncio connections.

redis-py packs a command in Python on its asyncio connections (its blocking ones use
hiredis's C packer when hiredis is installed). A worker sends long script calls, a batch
of results in one call, so packing showed in its profile; :func:`hiredis_packing` makes an
asyncio client's pool pack as the blocking client does: the same bytes, made in C.
"""

from __future__ import annotations

import functools
from typing import Any

from redis.connection import HiredisRespSerializer
from redis.utils import HIREDIS_AVAILABLE

__all__ = ["hiredis_packing"]

_SERIALIZER = HiredisRespSerializer()
if HIREDIS_AVAILABLE:
    from hiredis import pack_command as _pack


class _HiredisPacking:
    """Mixed into a redis-py asyncio connection class: ``pack_command`` by hiredis."""

    def pack_command(self, *args: Any) -> list[bytes]:
        # the usual command (str, bytes and numbers) straight to hiredis; anything else
        # (a memoryview, a value Redis cannot take) as redis-py's own serializer has it
        first = args[0]
        if isinstance(first, str) and " " not in first:
            try:
                return [_pack(args)]
            except TypeError:
                pass
        return _SERIALIZER.pack(*args)  # type: ignore[no-any-return]


@functools.cache
def _packed(connection_class: type) -> type:
    return type(connection_class.__name__, (_HiredisPacking, connection_class), {})


def hiredis_packing(pool: Any) -> None:
    """Make ``pool`` (an asyncio connection pool) create connections that pack in C."""
    if HIREDIS_AVAILABLE and not issubclass(pool.connection_class, _HiredisPacking):
        pool.connection_class = _packed(pool.connection_class)
