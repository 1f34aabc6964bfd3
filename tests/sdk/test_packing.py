"""redis-py connections: commands packed in C (the bytes redis-py makes), plain pipelines, lanes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio.connection
from redis.utils import HIREDIS_AVAILABLE

import jobwire
from jobwire.errors import RedisCommandError
from jobwire.packing import Lane, SyncLane, hiredis_packing, plain_pipeline
from jobwire.protocol import Command, Gen, run_async, run_sync

ARGS = [
    ("EVALSHA", "a" * 40, 1, "jobwire:{q}:stream", "é€😀", b"\x00\xff" * 5000, 7, -3, 0.5),
    ("CONFIG GET", "maxmemory-policy"),
    ("SET", "k", memoryview(b"v"), bytearray(b"w"), 2**70),
    (b"XREADGROUP", "GROUP", "jobwire", "w", "COUNT", 10, "BLOCK", 1000, "STREAMS", "s", ">"),
]


def _pool(kind: str) -> Any:
    settings = jobwire.RedisSettings.from_url("redis://127.0.0.1:1/0")
    client = settings.async_client() if kind == "async" else settings.sync_client()
    return client.connection_pool


def _redis_pys(kind: str) -> Any:
    return redis.asyncio.connection.Connection() if kind == "async" else redis.Connection()


@pytest.mark.skipif(not HIREDIS_AVAILABLE, reason="hiredis is not installed")
@pytest.mark.parametrize("kind", ["async", "sync"])
@pytest.mark.parametrize("args", ARGS)
def test_both_clients_pack_what_redis_py_packs(kind: str, args: tuple[object, ...]) -> None:
    pool = _pool(kind)
    conn = pool.make_connection()
    assert b"".join(conn.pack_command(*args)) == b"".join(_redis_pys(kind).pack_command(*args))
    pipeline = [args, ("PING",), args]
    assert b"".join(conn.pack_commands(pipeline)) == b"".join(
        _redis_pys(kind).pack_commands(pipeline)
    )
    before = (pool.connection_class, pool.connection_kwargs.get("command_packer"))
    hiredis_packing(pool)  # once is enough
    assert (pool.connection_class, pool.connection_kwargs.get("command_packer")) == before


@pytest.mark.skipif(not HIREDIS_AVAILABLE, reason="hiredis is not installed")
@pytest.mark.parametrize("kind", ["async", "sync"])
def test_a_value_redis_cannot_take_is_refused_as_before(kind: str) -> None:
    conn = _pool(kind).make_connection()
    for value in (object(), True):
        with pytest.raises(redis.exceptions.DataError):
            conn.pack_command("SET", "k", value)


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


# ------------------------------------------------------------------------ lanes


@contextlib.asynccontextmanager
async def _lane(redis_url: str) -> AsyncIterator[tuple[redis.asyncio.Redis, Lane]]:
    client = jobwire.RedisSettings.from_url(redis_url).async_client()
    lane = Lane(client)
    try:
        yield client, lane
    finally:
        await lane.close()
        await client.aclose()


def test_a_lane_replies_as_the_pool_does_and_keeps_one_connection(redis_url: str) -> None:
    asyncio.run(_lane_replies(redis_url))


async def _lane_replies(redis_url: str) -> None:
    async with _lane(redis_url) as (client, lane):
        ours = await lane.send(PIPELINE)
        await client.flushall()
        theirs = [await _reply(client, args) for args in PIPELINE]
        assert ours is not None
        assert _normal(ours) == _normal(theirs)
        ids = {await _client_id(lane) for _ in range(3)}
        assert len(ids) == 1  # the same connection each time, out of the pool
        pool = client.connection_pool
        assert len(pool._in_use_connections) == 1
        await lane.close()
        assert not pool._in_use_connections
        assert await lane.send([("PING",)]) == [True]  # usable again: takes a connection anew


async def _reply(client: redis.asyncio.Redis, args: tuple[object, ...]) -> object:
    try:
        return await client.execute_command(*args)
    except redis.exceptions.ResponseError as exc:
        return exc


async def _client_id(lane: Lane) -> object:
    replies = await lane.send([("CLIENT", "ID")])
    assert replies is not None
    return replies[0]


def test_commands_driven_over_a_lane_reply_and_fail_as_over_the_pool(redis_url: str) -> None:
    """run_async with a lane: the same values, and a Redis error is the same typed error."""
    asyncio.run(_driven(redis_url))


def _steps() -> Gen[tuple[object, object]]:
    yield Command(("SET", "n", "1"))
    value = yield Command(("INCR", "n"))
    try:
        yield Command(("HGET", "n", "f"))  # WRONGTYPE
    except RedisCommandError as exc:
        return value, str(exc)
    return value, None


async def _driven(redis_url: str) -> None:
    async with _lane(redis_url) as (client, lane):
        over_lane = await run_async(client, _steps(), lane)
        over_pool = await run_async(client, _steps())
        assert over_lane == over_pool
        assert over_lane[0] == 2 and "WRONGTYPE" in str(over_lane[1])


def test_a_busy_lane_sends_nothing_and_the_caller_takes_the_pool(redis_url: str) -> None:
    asyncio.run(_busy(redis_url))


async def _busy(redis_url: str) -> None:
    async with _lane(redis_url) as (client, lane):
        blocked = asyncio.ensure_future(lane.send([("BLPOP", "nothing", 0.5)]))
        await asyncio.sleep(0.1)
        assert await lane.send([("PING",)]) is None
        # through run_async the second caller's command still runs (on the pool)
        assert await run_async(client, _one(("PING",)), lane) is True
        assert await blocked == [None]


def _one(args: tuple[object, ...]) -> Gen[object]:
    reply = yield Command(args)
    return reply


def test_a_cancelled_lane_call_leaves_no_reply_behind(redis_url: str) -> None:
    asyncio.run(_lane_cancelled(redis_url))


async def _lane_cancelled(redis_url: str) -> None:
    async with _lane(redis_url) as (client, lane):
        await client.set("k", "v")
        slow = asyncio.ensure_future(
            lane.send([("SET", "k", "slow"), ("BLPOP", "nothing", 1), ("GET", "k")])
        )
        await asyncio.sleep(0.2)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        await asyncio.sleep(1.0)  # the late replies arrive on the connection the lane keeps
        assert await lane.send([("GET", "k"), ("PING",)]) == [b"slow", True]


def test_a_lane_reconnects_after_its_connection_is_dropped(redis_url: str) -> None:
    asyncio.run(_lane_reconnects(redis_url))


async def _lane_reconnects(redis_url: str) -> None:
    async with _lane(redis_url) as (client, lane):
        assert await lane.send([("SET", "k", "1")]) == [True]
        await client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        assert await lane.send([("INCR", "k"), ("GET", "k")]) == [2, b"2"]


# ------------------------------------------------------------------- blocking lanes


@contextlib.contextmanager
def _sync_lane(redis_url: str) -> Iterator[tuple[redis.Redis, SyncLane]]:
    client = jobwire.RedisSettings.from_url(redis_url).sync_client()
    lane = SyncLane(client)
    try:
        yield client, lane
    finally:
        lane.close()
        client.close()


def test_a_blocking_lane_replies_as_the_pool_does_and_keeps_one_connection(
    redis_url: str,
) -> None:
    with _sync_lane(redis_url) as (client, lane):
        ours = lane.send(PIPELINE)
        client.flushall()
        theirs = [_sync_reply(client, args) for args in PIPELINE]
        assert ours is not None
        assert _normal(ours) == _normal(theirs)
        ids = {_sync_id(lane) for _ in range(3)}
        assert len(ids) == 1  # the same connection each time
        assert client.client_id() not in ids  # held: the pool hands out another one
        lane.close()
        assert client.client_id() in ids  # given back to the pool
        assert lane.send([("PING",)]) == [True]
        # driven commands: the same values and the same typed error as over the pool
        assert run_sync(client, _steps(), lane) == run_sync(client, _steps())


def _sync_reply(client: redis.Redis, args: tuple[object, ...]) -> object:
    try:
        return client.execute_command(*args)
    except redis.exceptions.ResponseError as exc:
        return exc


def _sync_id(lane: SyncLane) -> object:
    replies = lane.send([("CLIENT", "ID")])
    assert replies is not None
    return replies[0]


def test_a_blocking_lane_busy_in_another_thread_leaves_the_call_to_the_pool(
    redis_url: str,
) -> None:
    with _sync_lane(redis_url) as (client, lane):
        replies: list[object] = []
        blocked = threading.Thread(target=lambda: replies.append(lane.send([("BLPOP", "x", 0.5)])))
        blocked.start()
        try:
            deadline = 50
            while b"cmd=blpop" not in client.execute_command("CLIENT", "LIST") and deadline:
                deadline -= 1
                threading.Event().wait(0.02)
            assert lane.send([("PING",)]) is None
            assert run_sync(client, _one(("PING",)), lane) is True  # on the pool
        finally:
            blocked.join()
        assert replies == [[None]]


def test_a_blocking_lane_reconnects_after_its_connection_is_dropped(redis_url: str) -> None:
    with _sync_lane(redis_url) as (client, lane):
        assert lane.send([("SET", "k", "1")]) == [True]
        client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        assert lane.send([("INCR", "k"), ("GET", "k")]) == [2, b"2"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_does_not_use_its_parents_lane_connection(redis_url: str) -> None:
    with _sync_lane(redis_url) as (_, lane):
        parent = _sync_id(lane)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its own connection, the parent's socket untouched
            try:
                os.write(write, repr(_sync_id(lane)).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as f:
            child = f.read()
        os.waitpid(pid, 0)
        assert child and child != repr(parent)
        assert _sync_id(lane) == parent  # the parent's connection still answers it alone


def test_a_lanes_bound_is_a_quiet_socket_timeout_not_the_whole_batch(redis_url: str) -> None:
    """Replies that keep coming are waited for; a connection quiet too long is dropped."""
    asyncio.run(_bound(redis_url))


async def _bound(redis_url: str) -> None:
    settings = jobwire.RedisSettings.from_url(redis_url, socket_timeout=0.5, retries=0)
    client = settings.async_client()
    lane = Lane(client)
    try:
        steady = [("BLPOP", "nothing", 0.3)] * 3  # 0.9 s in all, a reply every 0.3 s
        assert await lane.send(steady) == [None, None, None]
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(redis.exceptions.TimeoutError):
            await lane.send([("BLPOP", "nothing", 3)])
        assert 0.5 <= loop.time() - started < 1.5  # one or two quiet periods, not 3 s
        assert await lane.send([("PING",)]) == [True]  # a new connection, no stale reply
    finally:
        await lane.close()
        await client.aclose()


def test_closing_a_blocking_lane_does_not_wait_for_a_call_in_flight(redis_url: str) -> None:
    with _sync_lane(redis_url) as (_, lane):
        replies: list[object] = []
        blocked = threading.Thread(target=lambda: replies.append(lane.send([("BLPOP", "x", 2)])))
        blocked.start()
        threading.Event().wait(0.2)  # sent, and waiting
        started = threading.Event()
        closing = threading.Thread(target=lambda: (lane.close(), started.set()))
        closing.start()
        assert started.wait(1.0)  # at once, not after the 2 s wait
        blocked.join()
        assert replies == [[None]]  # the call in flight ended as it would have
        assert lane.send([("PING",)]) == [True]


def test_closing_a_lane_with_a_call_in_flight_gives_its_connection_back_after_it(
    redis_url: str,
) -> None:
    """No other caller of the pool may get the connection while its reply is unread."""
    asyncio.run(_close_in_flight(redis_url))


async def _close_in_flight(redis_url: str) -> None:
    async with _lane(redis_url) as (client, lane):
        lane_id = await _client_id(lane)
        slow = asyncio.ensure_future(lane.send([("BLPOP", "nothing", 0.5)]))
        await asyncio.sleep(0.1)
        await lane.close()
        assert await client.client_id() != lane_id  # still the call's, not the pool's
        assert await slow == [None]
        assert await client.client_id() == lane_id  # back in the pool once it ended
