"""Less per-call work on redis-py's connections: C packing, plain pipelines, lanes.

redis-py packs a command in Python on its asyncio connections, and on its blocking ones it
encodes every argument in Python before hiredis packs them. A worker sends long script
calls (a batch of results in one call) and an enqueue is a script call of some twenty
arguments, so packing showed in both profiles: :func:`hiredis_packing` makes a pool's
connections (asyncio or blocking) hand the arguments to hiredis's C packer as they are,
the same bytes. :func:`plain_pipeline` sends a pipeline on a single Redis without
redis-py's ``Pipeline`` object, whose own bookkeeping showed on an idle worker's path to a
job's start. A :class:`Lane` (:class:`SyncLane` for threads) keeps one connection of the
pool for a caller that sends one call at a time (a worker's fetch loop, its group commit,
a client's enqueues), without the pool's checkout and redis-py's wrapper per call.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from typing import Any

import redis.asyncio
import redis.exceptions
from redis.connection import HiredisRespSerializer
from redis.exceptions import ResponseError
from redis.utils import HIREDIS_AVAILABLE

__all__ = ["Lane", "SyncLane", "hiredis_packing", "plain_pipeline"]

_SERIALIZER: Any = HiredisRespSerializer()  # type: ignore[no-untyped-call, unused-ignore]  # redis-py 8.2
if HIREDIS_AVAILABLE:
    from hiredis import pack_command as _pack
_timeout: Any = getattr(asyncio, "timeout", None)  # Python 3.11 and later


def _pack_command(*args: Any) -> list[bytes]:
    # the usual command (str, bytes and numbers) straight to hiredis; anything else
    # (a memoryview, a value Redis cannot take) as redis-py's own serializer has it
    first = args[0]
    if isinstance(first, str) and " " not in first:
        try:
            return [_pack(args)]
        except TypeError:
            pass
    return _SERIALIZER.pack(*args)  # type: ignore[no-any-return]


class _HiredisPacking:
    """Mixed into a redis-py asyncio connection class: ``pack_command`` by hiredis."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return _pack_command(*args)


class _Packer:
    """A blocking connection's ``command_packer``: what ``_pack_command`` makes."""

    pack = staticmethod(_pack_command)


@functools.cache
def _packed(connection_class: type) -> type:
    return type(connection_class.__name__, (_HiredisPacking, connection_class), {})


def hiredis_packing(pool: Any) -> None:
    """Make ``pool`` (an asyncio or a blocking one) create connections that pack in C."""
    if not HIREDIS_AVAILABLE:
        return
    if not isinstance(pool, redis.asyncio.ConnectionPool):
        pool.connection_kwargs.setdefault("command_packer", _Packer())
        return
    made: Any = pool.connection_class
    if not issubclass(made, _HiredisPacking):
        pool.connection_class = _packed(made)


def _plain(client: Any) -> bool:
    """True for a client whose commands may skip redis-py's wrappers (not one connection)."""
    return client.connection is None and not client.single_connection_client


async def _send_and_read(
    client: Any, conn: Any, commands: list[tuple[Any, ...]], watch: _Stalled | None = None
) -> list[Any]:
    await conn.send_packed_command(conn.pack_commands(commands))
    replies: list[Any] = []
    for args in commands:
        try:
            replies.append(await client.parse_response(conn, args[0]))
        except ResponseError as exc:
            replies.append(exc)
        if watch is not None:
            watch.replies += 1
    return replies


class _Stalled:
    """The bound of one exchange: it fails when a whole ``socket_timeout`` brings no reply.

    redis-py bounds a write with ``asyncio.wait_for`` (on Python 3.11 a task of its own:
    two more turns of the event loop per call) and each reply with a timer of its own (a
    batch of enqueues coalesced into one pipeline made hundreds). Here one timer watches
    the whole exchange: as before, a connection that goes quiet for ``socket_timeout``
    fails with redis-py's ``TimeoutError`` and is dropped, within one more period.
    """

    __slots__ = ("_bound", "_handle", "_loop", "_seen", "_timeout", "replies")

    def __init__(self, bound: Any, timeout: float) -> None:
        self._bound, self._timeout = bound, timeout
        self._loop = asyncio.get_running_loop()
        self.replies = self._seen = 0
        self._handle = self._loop.call_later(timeout, self._check)

    def _check(self) -> None:
        if self.replies == self._seen:
            self._bound.reschedule(self._loop.time())  # quiet a whole period: time out now
        else:
            self._seen = self.replies
            self._handle = self._loop.call_later(self._timeout, self._check)

    def cancel(self) -> None:
        self._handle.cancel()


async def _bounded(client: Any, conn: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` and read their replies under one :class:`_Stalled` bound."""
    timeout = conn.socket_timeout
    if not timeout or _timeout is None:  # (no bound, or Python 3.10: as redis-py does it)
        return await _send_and_read(client, conn, commands)
    # the connection is this caller's alone meanwhile (a lane's, or checked out)
    conn.socket_timeout = None
    watch: _Stalled | None = None
    try:
        async with _timeout(None) as bound:
            watch = _Stalled(bound, timeout)
            try:
                return await _send_and_read(client, conn, commands, watch)
            finally:
                watch.cancel()
    except TimeoutError as exc:
        await conn.disconnect(nowait=True)
        doing = "reading from" if watch and watch.replies else "writing to or reading from"
        raise redis.exceptions.TimeoutError(f"Timeout {doing} socket") from exc
    finally:
        conn.socket_timeout = timeout


async def _exchange(client: Any, conn: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` on ``conn`` in one write and read their replies (errors as values).

    redis-py's retry and disconnect on error wrap it, as in ``execute_command``.
    """

    async def send_and_read() -> list[Any]:
        if not conn.is_connected:
            # the connection's own connect(): a Sentinel-managed one asks for the master
            # there (redis-py's send reconnects to the address it had)
            await conn.connect()
        return await _bounded(client, conn, commands)

    async def fail(error: Exception) -> None:
        await conn.disconnect()

    return await conn.retry.call_with_retry(send_and_read, fail)  # type: ignore[no-any-return]


async def plain_pipeline(client: Any, commands: list[tuple[Any, ...]]) -> list[Any] | None:
    """``commands`` in one round trip on a single Redis, without a redis-py ``Pipeline``.

    The same bytes, retries, disconnect on error and reply parsing as
    ``client.pipeline(transaction=False).execute(raise_on_error=False)``, but none of that
    object's per-call work, which showed on a worker's idle path (its blocking read and the
    start of what it gave, one pipeline per job). A command's error is its reply. Returns
    None for a client bound to one connection: that one takes redis-py's pipeline.
    """
    if not _plain(client):
        return None
    pool = client.connection_pool
    conn = await pool.get_connection()
    try:
        return await _exchange(client, conn, commands)
    finally:
        await pool.release(conn)


class Lane:
    """A connection of a client's pool kept by one caller that sends one thing at a time.

    A worker's fetch loop and its group commit each send a command (or a pipeline) per
    batch of jobs, one after the other: on a lane those skip the pool's checkout and
    return and redis-py's per-command wrapper (its observability hooks, its own retry
    closure), which together took about a sixth of a no-op job's CPU. What goes over the
    wire, the retries, the disconnect on error (a cancelled read included: the next call
    reconnects) and the reply parsing are those of ``execute_command``.

    :meth:`send` returns None when the lane cannot take the call (a client bound to one
    connection, or the lane busy with another call): the caller then takes the pool.
    """

    __slots__ = ("_busy", "_client", "_conn")

    def __init__(self, client: Any) -> None:
        self._client = client
        self._conn: Any = None
        self._busy = False

    async def send(self, commands: list[tuple[Any, ...]]) -> list[Any] | None:
        """The replies to ``commands`` (errors as values), or None (see the class)."""
        if self._busy or not _plain(self._client):
            return None
        self._busy = True
        conn = None
        try:
            if self._conn is None:
                self._conn = await self._client.connection_pool.get_connection()
            conn = self._conn
            return await _exchange(self._client, conn, commands)
        finally:
            self._busy = False
            if conn is not None and conn is not self._conn:  # closed meanwhile: back now
                await self._client.connection_pool.release(conn)

    async def close(self) -> None:
        """Give the connection back to its pool (the lane may be used again after).

        With a call in flight, the connection goes back when that call ends, not before:
        another caller of the pool must not read that call's reply.
        """
        conn, self._conn = self._conn, None
        if conn is not None and not self._busy:
            await self._client.connection_pool.release(conn)


def _exchange_sync(client: Any, conn: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """:func:`_exchange` on a blocking connection."""

    def send_and_read() -> list[Any]:
        if not conn.is_connected:
            conn.connect()  # (a Sentinel-managed connection asks for the master here)
        conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        for args in commands:
            try:
                replies.append(client.parse_response(conn, args[0]))
            except ResponseError as exc:
                replies.append(exc)
        return replies

    def fail(error: Exception) -> None:
        conn.disconnect()

    try:
        return conn.retry.call_with_retry(send_and_read, fail)  # type: ignore[no-any-return]
    except BaseException:
        conn.disconnect()  # an interrupted read (Ctrl-C) leaves no reply behind
        raise


class SyncLane:
    """:class:`Lane` for a blocking client: one connection kept for calls made one at a time.

    A client's enqueues go one round trip at a time (concurrent ones are coalesced into
    the next round trip, :mod:`jobwire.coalesce`), so one kept connection serves them all.
    :meth:`send` returns None when it cannot take the call: a client bound to one
    connection, the lane busy in another thread, or a process forked since the lane took
    its connection (the parent's socket is not this process's to use).
    """

    __slots__ = ("_client", "_conn", "_lock", "_pid")

    def __init__(self, client: Any) -> None:
        self._client = client
        self._conn: Any = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def send(self, commands: list[tuple[Any, ...]]) -> list[Any] | None:
        """The replies to ``commands`` (errors as values), or None (see the class)."""
        # (a blocking client bound to one connection holds it in ``connection``)
        if self._client.connection is not None or not self._lock.acquire(blocking=False):
            return None
        conn = None
        try:
            if self._pid != os.getpid():
                self._conn, self._pid = None, os.getpid()  # the parent's: not ours to touch
            if self._conn is None:
                self._conn = self._client.connection_pool.get_connection()
            conn = self._conn
            return _exchange_sync(self._client, conn, commands)
        finally:
            if conn is not None and conn is not self._conn:  # closed meanwhile: back now
                self._client.connection_pool.release(conn)
            self._lock.release()

    def close(self) -> None:
        """Give the connection back to its pool (the lane may be used again after).

        Never waits: with a call in flight in another thread (a long wait for a result),
        the connection goes back when that call ends.
        """
        if not self._lock.acquire(blocking=False):
            self._conn = None
            return
        try:
            conn, self._conn = self._conn, None
            if conn is not None and self._pid == os.getpid():
                self._client.connection_pool.release(conn)
        finally:
            self._lock.release()
