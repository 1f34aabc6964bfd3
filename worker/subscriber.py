"""The abort listener: a client's ``abort ID`` notice stops a running job at once.

Notices come over sharded pub/sub (``SSUBSCRIBE`` to each queue's ``P:{Q}:events``, which
the abort script ``SPUBLISH``es): on a single Redis that is one connection; on a cluster a
shard channel lives on the master of its slot (the queue's slot), so the listener keeps one
connection per master that serves one of its queues. When a slot moves (resharding,
failover) Redis ends the subscription (``sunsubscribe``) or the connection drops; the
listener then raises and is restarted by its supervisor, which subscribes again where the
slot is now. Lease renewal also reports abort requests, so a notice lost meanwhile still
aborts the job within a renewal interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio
import redis.asyncio.cluster
import redis.exceptions

from jobwire.errors import RedisUnavailable
from jobwire.protocol import AsyncRedis, translate_error
from jobwire.settings import RedisSettings

from .supervisor import LoopState

__all__ = ["AbortListener"]

_ERRORS = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException)


class AbortListener:
    """Subscribes to the queues' event channels and aborts the jobs they name."""

    def __init__(
        self, conn: AsyncRedis, channels: Sequence[str], settings: RedisSettings | None = None
    ) -> None:
        self._conn = conn
        self._channels = list(channels)
        self._settings = settings or RedisSettings()
        # (pubsub, its own client or None when it borrows ``conn``): one per master
        self._subscriptions: list[tuple[Any, redis.asyncio.Redis | None]] = []

    async def subscribe(self) -> None:
        """Subscribe now (the worker does so before its first job can start)."""
        try:
            if isinstance(self._conn, redis.asyncio.cluster.RedisCluster):
                await self._conn.initialize()
            for client, channels in self._by_node():
                pubsub: Any = (client or self._conn).pubsub()
                self._subscriptions.append((pubsub, client))
                await pubsub.ssubscribe(*channels)
        except _ERRORS as exc:
            await self._close()
            raise _translated(exc, "cannot subscribe to abort notices") from exc

    def _by_node(self) -> list[tuple[redis.asyncio.Redis | None, list[str]]]:
        """The channels grouped by the master that serves them (one group on a single Redis).

        On a cluster each group gets a client of its own to that master, with the
        settings' credentials and TLS.
        """
        conn = self._conn
        if not isinstance(conn, redis.asyncio.cluster.RedisCluster):
            return [(None, self._channels)]
        groups: dict[tuple[str, int], list[str]] = {}
        for channel in self._channels:
            node: Any = conn.get_node_from_key(channel)
            groups.setdefault((str(node.host), int(node.port)), []).append(channel)
        out: list[tuple[redis.asyncio.Redis | None, list[str]]] = []
        for (host, port), channels in groups.items():
            node_settings = self._settings.with_options(cluster_nodes=(), host=host, port=port)
            client = node_settings.async_client()
            assert isinstance(client, redis.asyncio.Redis)
            out.append((client, channels))
        return out

    async def listen(self, state: LoopState, abort: Callable[[str], object]) -> None:
        """Abort jobs as notices arrive (supervised: a lost connection raises, then resumes)."""
        try:
            if not self._subscriptions:
                await self.subscribe()
            state.waiting()
            readers = [
                asyncio.ensure_future(_read(pubsub, state, abort))
                for pubsub, _ in self._subscriptions
            ]
            try:
                done, _ = await asyncio.wait(readers, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # raises what ended it
            finally:
                for task in readers:
                    task.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
        except _ERRORS as exc:
            raise _translated(exc, "abort listener lost Redis") from exc
        finally:
            await self._close()

    async def _close(self) -> None:
        for pubsub, client in self._subscriptions:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._subscriptions.clear()


async def _read(pubsub: Any, state: LoopState, abort: Callable[[str], object]) -> None:
    async for message in pubsub.listen():
        kind = message.get("type")
        data = message.get("data")
        if kind in ("smessage", "message") and isinstance(data, bytes):
            verb, _, job_id = data.decode("utf-8", "replace").partition(" ")
            if verb == "abort":
                abort(job_id)
        elif kind == "sunsubscribe":
            # Redis ended the subscription: the channel's slot moved to another master
            raise RedisUnavailable("abort notices: the queue's slot moved; subscribing again")
        state.waiting()
    raise RedisUnavailable("abort notices: the subscription ended; subscribing again")


def _translated(exc: BaseException, what: str) -> BaseException:
    """The jobwire error for ``exc`` (refused credentials stay a RedisAuthError)."""
    error = translate_error(exc)
    if isinstance(error, RedisUnavailable):
        return RedisUnavailable(f"{what}: {exc}")
    return error
