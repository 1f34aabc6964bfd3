"""Less per-call work on redis-py's asyncio connections: C packing, plain pipelines.

redis-py packs a command in Python on its asyncio connections (its blocking ones use
hiredis's C packer when hiredis is installed). A worker sends long script calls, a batch
of results in one call, so packing showed in its profile; :func:`hiredis_packing` makes an
asyncio client's pool pack as the blocking client does: the same bytes, made in C.
:func:`plain_pipeline` sends a pipeline on a single Redis without redis-py's ``Pipeline``
object, whose own bookkeeping showed on an idle worker's path to a job's start.
"""

from __future__ import annotations

import functools
from typing import Any

from redis.connection import HiredisRespSerializer
from redis.exceptions import ResponseError
from redis.utils import HIREDIS_AVAILABLE

__all__ = ["hiredis_packing", "plain_pipeline"]

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


async def plain_pipeline(client: Any, commands: list[tuple[Any, ...]]) -> list[Any] | None:
    """``commands`` in one round trip on a single Redis, without a redis-py ``Pipeline``.

    The same bytes, retries, disconnect on error and reply parsing as
    ``client.pipeline(transaction=False).execute(raise_on_error=False)``, but none of that
    object's per-call work, which showed on a worker's idle path (its blocking read and the
    start of what it gave, one pipeline per job). A command's error is its reply. Returns
    None for a client bound to one connection: that one takes redis-py's pipeline.
    """
    if client.connection is not None or client.single_connection_client:
        return None
    pool = client.connection_pool
    conn = await pool.get_connection()

    async def send_and_read() -> list[Any]:
        await conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        for args in commands:
            try:
                replies.append(await client.parse_response(conn, args[0]))
            except ResponseError as exc:
                replies.append(exc)
        return replies

    async def fail(error: Exception) -> None:
        await conn.disconnect()

    try:
        return await conn.retry.call_with_retry(send_and_read, fail)  # type: ignore[no-any-return]
    finally:
        await pool.release(conn)
