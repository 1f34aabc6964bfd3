"""Where Redis is and how to talk to it; builds redis-py clients for both clients alike.

URLs: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS,
``unix:///path/to/redis.sock[?db=N]``, and
``redis+sentinel://[[user]:password@]host:port[,host:port...]/master_name[/db]`` for Sentinel,
``redis+cluster://[[user]:password@]host:port[,host:port...][/0]`` for Redis Cluster
(``rediss+cluster://`` with TLS): the nodes named are where the client starts to learn the
cluster's layout; any one of them that answers is enough.

Settings are checked when they are made: a URL with an unknown scheme, a port or database
that is not a number, an unknown query option or a setting out of range is an
:class:`~jobwire.InvalidArgument` naming the part that is wrong, before anything connects.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import math
import re
import ssl
import types
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from redis.backoff import ExponentialBackoff

from .errors import InvalidArgument
from .packing import hiredis_packing
from .protocol import AsyncRedis, SyncRedis
from .retrying import AsyncRetry, SyncRetry

__all__ = ["RedisSettings"]

T = TypeVar("T")

_SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
_CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
#: Every scheme a Redis URL may have.
SCHEMES = ("redis", "rediss", "unix", *_SENTINEL_SCHEMES, *_CLUSTER_SCHEMES)
_CERT_REQS = ("none", "optional", "required")


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisSettings:
    """Connection settings shared by ``Client``, ``AsyncClient`` and the worker.

    ``url`` wins over ``host``/``port``/``database``/``username``/``password``/``ssl`` when set.
    ``socket_timeout`` bounds every reply (blocking waits are split to stay under it);
    ``retries`` reconnect attempts happen (with a short backoff) before a call raises
    :class:`~jobwire.RedisUnavailable`. Refused credentials are not retried: a wrong
    password or user is a :class:`~jobwire.RedisAuthError` at once.

    ``cluster_nodes`` (``(host, port)`` pairs) makes it a Redis Cluster connection: redis-py's
    cluster clients, which follow MOVED and ASK redirections and learn the new layout after
    a failover or a resharding. ``wait_replicas`` > 0 makes every enqueue wait (Redis
    ``WAIT``, up to ``wait_timeout`` seconds) until that many replicas have the job, and
    raise :class:`~jobwire.ReplicationTimeout` when fewer confirm it.

    Every field is checked when the settings are made (:class:`~jobwire.InvalidArgument`).
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
    cluster_nodes: Sequence[tuple[str, int]] = field(default_factory=tuple)
    wait_replicas: int = 0
    wait_timeout: float = 1.0
    socket_timeout: float = 5.0
    connect_timeout: float = 5.0
    max_connections: int = 50
    retries: int = 3

    def __post_init__(self) -> None:
        if self.url is not None:
            url, scheme = _split_scheme(self.url)
            if scheme in _SENTINEL_SCHEMES or scheme in _CLUSTER_SCHEMES:
                kind = "Sentinel" if scheme in _SENTINEL_SCHEMES else "cluster"
                raise InvalidArgument(
                    f"a {kind} URL ({scheme}://) is read by RedisSettings.from_url, "
                    "not given as url="
                )
            _check_url(url, scheme)
            object.__setattr__(self, "url", url)  # frozen: the scheme in lower case
        _check_fields(self)

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> RedisSettings:
        """Settings from a URL (Sentinel URLs are split into their hosts and master).

        ``overrides`` are other fields (``retries=0``, ``ssl_ca_certs=...``). Raises
        :class:`~jobwire.InvalidArgument` for a URL or a field that is wrong.
        """
        _check_names(overrides)
        url, scheme = _split_scheme(url)
        if scheme in _CLUSTER_SCHEMES:
            return _cluster_settings(cls, url, scheme, overrides)
        if scheme not in _SENTINEL_SCHEMES:
            return cls(url=url, **overrides)
        parts = urlsplit(url)
        hosts = tuple(_sentinel(item, url) for item in parts.netloc.rsplit("@", 1)[-1].split(","))
        path = [p for p in parts.path.split("/") if p]
        if not path or len(path) > 2:
            raise InvalidArgument(
                f"a Sentinel URL names the master and maybe a database, as in "
                f"redis+sentinel://host:26379/mymaster/0, not {_shown(url)!r}"
            )
        return cls(
            sentinels=hosts,
            sentinel_master=unquote(path[0]),
            database=_database(path[1], url) if len(path) > 1 else 0,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ssl=scheme.startswith("rediss"),
            **overrides,
        )

    def with_options(self, **changes: Any) -> RedisSettings:
        """A copy with some fields changed (checked as a new one is)."""
        _check_names(changes)
        return replace(self, **changes)

    @property
    def is_cluster(self) -> bool:
        """True for a Redis Cluster connection (``cluster_nodes`` set)."""
        return bool(self.cluster_nodes)

    def safe_url(self) -> str:
        """A description of the server for logs, without the password."""
        if self.cluster_nodes:
            hosts = ",".join(f"{h}:{p}" for h, p in self.cluster_nodes)
            return f"{'rediss' if self.ssl else 'redis'}+cluster://{hosts}/0"
        if self.sentinels:
            hosts = ",".join(f"{h}:{p}" for h, p in self.sentinels)
            return f"redis+sentinel://{hosts}/{self.sentinel_master}/{self.database}"
        if self.url:
            parts = urlsplit(self.url)
            netloc = parts.netloc.rsplit("@", 1)[-1]
            return parts._replace(netloc=netloc).geturl()
        scheme = "rediss" if self.ssl else "redis"
        return f"{scheme}://{self.host}:{self.port}/{self.database}"

    def sync_client(self) -> SyncRedis:
        """A thread-safe blocking redis-py client with a bounded connection pool.

        A ``redis.cluster.RedisCluster`` for a cluster, else a ``redis.Redis``.
        """
        if self.cluster_nodes:
            return _build_cluster(redis.cluster, SyncRetry, self)  # type: ignore[no-any-return]
        client: redis.Redis = _build(redis, SyncRetry, redis.sentinel.Sentinel, self)
        hiredis_packing(client.connection_pool)
        return client

    def async_client(self) -> AsyncRedis:
        """An asyncio redis-py client with a bounded connection pool.

        A ``redis.asyncio.cluster.RedisCluster`` for a cluster, else a ``redis.asyncio.Redis``.
        """
        if self.cluster_nodes:
            return _build_cluster(redis.asyncio.cluster, AsyncRetry, self)  # type: ignore[no-any-return]
        client: redis.asyncio.Redis = _build(
            redis.asyncio, AsyncRetry, redis.asyncio.sentinel.Sentinel, self
        )
        hiredis_packing(client.connection_pool)
        return client


# ------------------------------------------------------------------- checks


def _shown(url: str) -> str:
    """A URL for an error message: without its user and password."""
    return re.sub(r"^([^/]*//)?[^/@]*@", r"\1", url)


def _split_scheme(url: object) -> tuple[str, str]:
    """``(url, scheme)`` with the scheme in lower case; InvalidArgument if it has none we know."""
    if not isinstance(url, str):
        raise InvalidArgument(f"a Redis URL is a string, not {type(url).__qualname__}")
    schemes = ", ".join(f"{s}://" for s in SCHEMES)
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise InvalidArgument(
            f"Redis URL {_shown(url)!r} has no scheme: write it as redis://host:6379/0 "
            f"(the schemes are {schemes})"
        )
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidArgument(
            f"Redis URL {_shown(url)!r}: unknown scheme {scheme!r} (the schemes are {schemes})"
        )
    return f"{scheme}://{rest}", scheme


def _number(text: str) -> int | None:
    """``text`` as a plain decimal number (ASCII digits only), else None."""
    return int(text) if text.isascii() and text.isdigit() else None


def _port(text: str, where: str) -> int:
    port = _number(text)
    if port is None or not 0 < port < 65536:
        raise InvalidArgument(f"the port of {where} must be a number from 1 to 65535, not {text!r}")
    return port


def _database(text: str, url: str) -> int:
    database = _number(text)
    if database is None:
        raise InvalidArgument(
            f"the database of Redis URL {_shown(url)!r} must be a number such as /0, not {text!r}"
        )
    return database


def _sentinel(item: str, url: str) -> tuple[str, int]:
    return _node(item, url, "Sentinel", 26379)


def _node(item: str, url: str, kind: str, default_port: int) -> tuple[str, int]:
    host, colon, port = item.rpartition(":")
    if not colon:
        host, port = item, ""
    if not host:
        what = "Sentinel" if kind == "Sentinel" else "node"
        raise InvalidArgument(f"{kind} URL {_shown(url)!r} names a {what} without a host: {item!r}")
    return unquote(host), _port(port, f"{kind} node {item!r}") if port else default_port


def _cluster_settings(
    cls: type[RedisSettings], url: str, scheme: str, overrides: dict[str, Any]
) -> RedisSettings:
    """Settings from a ``redis+cluster://`` URL: its nodes, credentials and database 0."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    nodes = tuple(_node(item, url, "cluster", 6379) for item in netloc.split(","))
    path = [p for p in parts.path.split("/") if p]
    if len(path) > 1 or (path and _database(path[0], url) != 0):
        raise InvalidArgument(
            f"a Redis Cluster has database 0 only: write redis+cluster://host:7000,host:7001 "
            f"(or .../0), not {_shown(url)!r}"
        )
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    tls_options = {"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"}
    for name in options:
        if name not in tls_options:
            raise InvalidArgument(
                f"Redis URL {_shown(url)!r}: unknown option {name!r} (a cluster URL takes "
                f"{', '.join(sorted(tls_options))}; other settings go in RedisSettings)"
            )
    return cls(
        cluster_nodes=nodes,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        ssl=scheme.startswith("rediss"),
        **{**options, **overrides},
    )


def _check_url(url: str, scheme: str) -> None:
    """Refuse a ``redis``, ``rediss`` or ``unix`` URL that redis-py would misread or refuse."""
    parts = urlsplit(url)
    if scheme == "unix":
        if not parts.path:
            raise InvalidArgument(
                f"a unix URL names the socket, as in unix:///run/redis.sock, not {_shown(url)!r}"
            )
    else:
        hostport = parts.netloc.rpartition("@")[2]
        if ":" in hostport and not hostport.endswith("]"):
            port = hostport.rpartition(":")[2]
            if port:
                _port(port, f"Redis URL {_shown(url)!r}")
        path = unquote(parts.path).strip("/")
        if path:
            _database(path, url)  # redis-py would quietly use database 0
    try:
        options: dict[str, Any] = redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise InvalidArgument(f"Redis URL {_shown(url)!r}: {exc}") from None
    if options.get("db", 0) < 0:
        raise InvalidArgument(f"the database of Redis URL {_shown(url)!r} must not be negative")
    names = parse_qs(parts.query)
    # (read from redis-py's signatures only for a URL with options: 6 ms, once per class)
    known = (
        _url_options(options.get("connection_class", redis.connection.Connection))
        if names
        else set()
    )
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidArgument(f"Redis URL {_shown(url)!r}: unknown option {name!r}{hint}")


@functools.lru_cache(maxsize=8)
def _url_options(connection_class: type) -> frozenset[str]:
    """What a URL's query may set: the parameters of the pools and of their connections."""
    classes = [connection_class, redis.BlockingConnectionPool, redis.asyncio.BlockingConnectionPool]
    twin = getattr(redis.asyncio.connection, connection_class.__name__, None)
    if isinstance(twin, type):
        classes.append(twin)
    names: set[str] = set()
    for cls in classes:
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is not None:
                names.update(
                    name
                    for name, p in inspect.signature(init).parameters.items()
                    if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                )
    names.discard("self")
    return frozenset(names)


def _check_names(options: dict[str, Any]) -> None:
    known = [f.name for f in dataclasses.fields(RedisSettings)]
    for name in options:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidArgument(f"unknown Redis setting {name!r}{hint}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_fields(s: RedisSettings) -> None:
    def bad(name: str, expected: str) -> InvalidArgument:
        value = getattr(s, name)
        return InvalidArgument(f"Redis setting {name} must be {expected}, not {value!r:.60}")

    if not isinstance(s.host, str) or not s.host:
        raise bad("host", "a host name")
    if type(s.port) is not int or not 0 < s.port < 65536:
        raise bad("port", "a number from 1 to 65535")
    if type(s.database) is not int or s.database < 0:
        raise bad("database", "a number from 0")
    for name in ("username", "password", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        if not isinstance(getattr(s, name), (str, type(None))):
            raise bad(name, "a string or None")
    cert_reqs: object = s.ssl_cert_reqs
    if not (
        (isinstance(cert_reqs, str) and cert_reqs.lower() in _CERT_REQS)
        or isinstance(cert_reqs, ssl.VerifyMode)
    ):
        raise bad("ssl_cert_reqs", "one of 'none', 'optional', 'required'")
    for name in ("socket_timeout", "connect_timeout"):
        value = getattr(s, name)
        if value is not None and (not _is_number(value) or not 0 < value < math.inf):
            raise bad(name, "a positive number of seconds or None")
    if type(s.max_connections) is not int or s.max_connections < 1:
        raise bad("max_connections", "a number from 1")
    if type(s.retries) is not int or s.retries < 0:
        raise bad("retries", "a number from 0")
    if not isinstance(s.sentinel_master, str) or not s.sentinel_master:
        raise bad("sentinel_master", "a master name")
    if not _host_ports(s.sentinels):
        raise bad("sentinels", "(host, port) pairs")
    nodes: Any = s.cluster_nodes
    if not _host_ports(nodes):
        raise bad("cluster_nodes", "(host, port) pairs")
    if nodes and (s.sentinels or s.url):
        raise InvalidArgument("Redis settings name a cluster and also a Sentinel or a URL")
    if nodes and s.database != 0:
        raise bad("database", "0 on a Redis Cluster (a cluster has database 0 only)")
    if type(s.wait_replicas) is not int or not 0 <= s.wait_replicas <= 100:
        raise bad("wait_replicas", "a number from 0 to 100")
    timeout: Any = s.wait_timeout
    if not _is_number(timeout) or not 0 < timeout < math.inf:
        raise bad("wait_timeout", "a positive number of seconds")
    if s.wait_replicas and s.socket_timeout is not None and timeout >= s.socket_timeout:
        raise bad("wait_timeout", f"shorter than socket_timeout ({s.socket_timeout}s)")


# ------------------------------------------------------------------ clients


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


def _build_cluster(module: types.ModuleType, retry_class: Any, s: RedisSettings) -> Any:
    """A redis-py cluster client from ``module`` (``redis.cluster`` or its asyncio twin).

    It follows MOVED and ASK and refreshes the slot map by itself; connection errors are
    retried ``retries`` times (each retry may reach the new master after a failover).
    """
    tls: dict[str, Any] = (
        {"ssl": True, "ssl_ca_certs": s.ssl_ca_certs, "ssl_certfile": s.ssl_certfile,
         "ssl_keyfile": s.ssl_keyfile, "ssl_cert_reqs": s.ssl_cert_reqs}
        if s.ssl else {}
    )  # fmt: skip
    return module.RedisCluster(
        startup_nodes=[module.ClusterNode(host, port) for host, port in s.cluster_nodes],
        username=s.username,
        password=s.password,
        socket_timeout=s.socket_timeout,
        socket_connect_timeout=s.connect_timeout,
        retry=retry_class(ExponentialBackoff(cap=1.0, base=0.05), s.retries),
        decode_responses=False,
        max_connections=s.max_connections,
        **tls,
    )


def _host_ports(value: Any) -> bool:
    """True for a collection of ``(host, port)`` pairs (a string is not one)."""
    if isinstance(value, (str, bytes)):
        return False
    try:
        items = list(value)
    except TypeError:
        return False
    return all(
        isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)
        and type(item[1]) is int and 0 < item[1] < 65536
        for item in items
    )  # fmt: skip
