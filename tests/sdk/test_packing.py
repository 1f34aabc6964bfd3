"""Asyncio connections: commands packed in C (the bytes redis-py makes), plain pipelines."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio.connection
from redis.utils import HIREDIS_AVAILABLE

import jobwire
from jobwire.packing import hiredis_packing, plain_pipeline

ARGS = [
    ("EVALSHA", "a" * 40, 1, "jobwire:{q}:stream", "é€😀", b"\x00\xff" * 5000, 7, -3, 0.5),
    ("CONFIG GET", "maxmemory-policy"),
    ("SET", "k", memoryview(b"v"), bytearray(b"w"), 2**70),
    (b"XREADGROUP", "GROUP", "jobwire", "w", "COUNT", 10, "BLOCK", 1000, "STREAMS", "s", ">"),
]


@pytest.mark.skipif(not HIREDIS_AVAILABLE, reason="hiredis is not installed")
@pytest.mark.parametrize("args", ARGS)
def test_the_async_client_packs_what_redis_py_packs(args: tuple[object, ...]) -> None:
    settings = jobwire.RedisSettings.from_url("redis://127.0.0.1:1/0")
    pool = settings.async_client().connection_pool
    packed = pool.make_connection().pack_command(*args)
    plain = redis.asyncio.connection.Connection().pack_command(*args)
    assert b"".join(packed) == b"".join(plain)
    before = pool.connection_class
    hiredis_packing(pool)  # once is enough
    assert pool.connection_class is before


@pytest.mark.skipif(not HIREDIS_AVAILABLE, reason="hiredis is not installed")
def test_a_value_redis_cannot_take_is_refused_as_before() -> None:
    pool = jobwire.RedisSettings.from_url("redis://127.0.0.1:1/0").async_client().connection_pool
    for value in (object(), True):
        with pytest.raises(redis.exceptions.DataError):
            pool.make_connection().pack_command("SET", "k", value)


# ----------------------------------------------------------------- plain_pipeline

PIPELINE = [
    ("HSET", "h", "a", "1", "b", "2"),
    ("HGETALL", "h"),  # a reply redis-py's callbacks turn into a dict
    ("XADD", "s", "1-1", "job", "j1"),
    ("XRANGE", "s", "-", "+"),
    ("INCR", "h"),  # an error in one slot: that slot's reply
    ("GET", "missing"),
    ("EVAL", "return {1, 'two', {3}}", 0),
]


def _normal(replies: list[object]) -> list[object]:
    out: list[object] = []
    for r in replies:
        if isinstance(r, Exception):
            out.append((type(r).__name__, str(r)))
        else:
            out.append(r)
    return out


def test_a_plain_pipeline_replies_as_redis_pys_pipeline(redis_url: str) -> None:
    asyncio.run(_same_replies(redis_url))


async def _same_replies(redis_url: str) -> None:
    client = jobwire.RedisSettings.from_url(redis_url).async_client()
    try:
        ours = await plain_pipeline(client, PIPELINE)
        await client.flushall()
        pipe = client.pipeline(transaction=False)
        for args in PIPELINE:
            pipe.execute_command(*args)
        theirs = await pipe.execute(raise_on_error=False)
        assert ours is not None
        assert _normal(ours) == _normal(theirs)
        assert isinstance(ours[4], redis.exceptions.ResponseError)
    finally:
        await client.aclose()


def test_a_cancelled_plain_pipeline_leaves_no_reply_behind(redis_url: str) -> None:
    """A pipeline cancelled before its replies are read must not hand them to the next one."""
    asyncio.run(_cancelled(redis_url))


async def _cancelled(redis_url: str) -> None:
    client = jobwire.RedisSettings.from_url(redis_url).async_client()
    try:
        await client.set("k", "v")
        slow = asyncio.ensure_future(
            plain_pipeline(client, [("SET", "k", "slow"), ("BLPOP", "nothing", 1), ("GET", "k")])
        )
        await asyncio.sleep(0.2)  # sent, and waiting for BLPOP's reply
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        await asyncio.sleep(1.0)  # BLPOP's reply (and GET's) arrive on the old connection
        assert await plain_pipeline(client, [("GET", "k"), ("PING",)]) == [b"slow", True]
        assert await client.get("k") == b"slow"
    finally:
        await client.aclose()


def test_a_plain_pipeline_reconnects_after_a_dropped_connection(redis_url: str) -> None:
    asyncio.run(_reconnects(redis_url))


async def _reconnects(redis_url: str) -> None:
    client = jobwire.RedisSettings.from_url(redis_url).async_client()
    try:
        assert await plain_pipeline(client, [("SET", "k", "1"), ("GET", "k")]) == [True, b"1"]
        await client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        # the pooled connection is dead: redis-py's retry reconnects and sends again
        assert await plain_pipeline(client, [("INCR", "k"), ("GET", "k")]) == [2, b"2"]
    finally:
        await client.aclose()
