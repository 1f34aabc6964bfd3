"""Where Redis is and how to talk to it; builds redis-py clients for both clients alike.

URLs: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS,
``unix:///path/to/redis.sock[?db=N]``, and
``redis+sentinel://[[user]:password@]host:port[,host:port...]/master_name[/db]`` for Sentinel.
"""

from __future__ import annotations

import types
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.retry
import redis.sentinel
from redis.backoff import ExponentialBackoff

from .errors import InvalidArgument

__all__ = ["RedisSettings"]

_SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisSettings:
    """Connection settings shared by ``Client``, ``AsyncClient`` and the worker.

    ``url`` wins over ``host``/``port``/``database``/``username``/``password``/``ssl`` when set.
    ``socket_timeout`` bounds every reply (blocking waits are split to stay under it);
    ``retries`` reconnect attempts happen (with a short backoff) before a call raises
    :class:`~jobwire.RedisUnavailable`.
    """

    url: str | None = None
    host: str = "localhost"
    port: int = 6379
    database: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: str = "required"
    sentinels: Sequence[tuple[str, int]] = field(default_factory=tuple)
    sentinel_master: str = "mymaster"
    socket_timeout: float = 5.0
    connect_timeout: float = 5.0
    max_connections: int = 50
    retries: int = 3

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> RedisSettings:
        """Settings from a URL (Sentinel URLs are split into their hosts and master)."""
        scheme = url.split("://", 1)[0].lower()
        if scheme not in _SENTINEL_SCHEMES:
            if scheme not in ("redis", "rediss", "unix"):
                raise InvalidArgument(f"unsupported Redis URL scheme {scheme!r}")
            return cls(url=url, **overrides)
        parts = urlsplit(url)
        hosts: list[tuple[str, int]] = []
        for item in parts.netloc.rsplit("@", 1)[-1].split(","):
            host, _, port = item.rpartition(":")
            hosts.append((host or item, int(port) if host else 26379))
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise InvalidArgument("a Sentinel URL names the master: redis+sentinel://h:p/master")
        return cls(
            sentinels=tuple(hosts),
            sentinel_master=path[0],
            database=int(path[1]) if len(path) > 1 else 0,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ssl=scheme.startswith("rediss"),
            **overrides,
        )

    def with_options(self, **changes: Any) -> RedisSettings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def safe_url(self) -> str:
        """A description of the server for logs, without the password."""
        if self.sentinels:
            hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"redis+sentinel://{hosts}/{self.sentinel_master}/{self.database}"
        if self.url:
            parts = urlsplit(self.url)
            netloc = parts.netloc.rsplit("@", 1)[-1]
            return parts._replace(netloc=netloc).geturl()
        scheme = "rediss" if self.ssl else "redis"
        return f"{scheme}://{self.host}:{self.port}/{self.database}"

    def sync_client(self) -> redis.Redis:
        """A thread-safe blocking redis-py client with a bounded connection pool."""
        client: redis.Redis = _build(redis, redis.retry.Retry, redis.sentinel.Sentinel, self)
        return client

    def async_client(self) -> redis.asyncio.Redis:
        """An asyncio redis-py client with a bounded connection pool."""
        client: redis.asyncio.Redis = _build(
            redis.asyncio, redis.asyncio.retry.Retry, redis.asyncio.sentinel.Sentinel, self
        )
        return client


def _build(
    module: types.ModuleType, retry_class: Any, sentinel_class: Any, s: RedisSettings
) -> Any:
    """Build a client from ``module`` (``redis`` or ``redis.asyncio``): same code for both."""
    common: dict[str, Any] = {
        "socket_timeout": s.socket_timeout,
        "socket_connect_timeout": s.connect_timeout,
        "retry": retry_class(ExponentialBackoff(cap=0.5, base=0.05), s.retries),
        "decode_responses": False,
    }
    tls: dict[str, Any] = {
        "ssl_ca_certs": s.ssl_ca_certs,
        "ssl_certfile": s.ssl_certfile,
        "ssl_keyfile": s.ssl_keyfile,
        "ssl_cert_reqs": s.ssl_cert_reqs,
    }
    auth = {"username": s.username, "password": s.password}
    if s.sentinels:
        sentinel = sentinel_class(
            list(s.sentinels),
            sentinel_kwargs={**auth, "socket_timeout": s.connect_timeout},
            db=s.database,
            ssl=s.ssl,
            **({**tls, **common, **auth} if s.ssl else {**common, **auth}),
        )
        return sentinel.master_for(s.sentinel_master)
    pool_class = module.BlockingConnectionPool
    if s.url:
        extra = tls if s.url.startswith("rediss:") else {}
        pool = pool_class.from_url(s.url, max_connections=s.max_connections, **common, **extra)
    else:
        conn: dict[str, Any] = {"host": s.host, "port": s.port, "db": s.database, **auth}
        if s.ssl:
            conn.update(tls, connection_class=module.SSLConnection)
        pool = pool_class(max_connections=s.max_connections, **common, **conn)
    return module.Redis(connection_pool=pool)
