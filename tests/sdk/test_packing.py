"""Commands packed in C on asyncio connections: the same bytes redis-py's packer makes."""

from __future__ import annotations

import pytest
import redis.asyncio.connection
from redis.utils import HIREDIS_AVAILABLE

import jobwire
from jobwire.packing import hiredis_packing

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
