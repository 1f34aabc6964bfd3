"""One error tree that keeps its promise.

"Catch JobwireError to catch anything jobwire raises for bad input, bad state or an
unavailable Redis": the public API is walked with bad arguments, and every call must raise
the documented subclass, never a plain ValueError, TypeError, KeyError or redis-py error.
Refused credentials are a RedisAuthError at once (a real redis-server with a password),
a port nothing listens on is a RedisUnavailable, and the docstring tree of
``jobwire.errors`` draws every class where it is.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis

import jobwire
import jobwire.errors
import jobwire.wire.errors
from jobwire import (
    AsyncClient,
    Client,
    EncodeError,
    InvalidArgument,
    JobNotFound,
    JobTimeout,
    JobwireError,
    RedisAuthError,
    RedisError,
    RedisSettings,
    RedisUnavailable,
    ResultNotFound,
    UnsupportedValue,
)
from jobwire.testing import AsyncMemoryClient, MemoryClient
from jobwire.wire import Codec, JobEnvelope, ResultEnvelope
from jobwire.worker import Worker, cron, func
from tests.helpers.redis_harness import MISSING_MESSAGE, REDIS_SERVER

Call = Callable[[Any], Any]
#: Where nothing listens: a check that is missing shows up as RedisUnavailable there, not
#: as the InvalidArgument the test expects.
NOWHERE = "redis://127.0.0.1:1/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def job_fn(ctx: dict[str, Any]) -> None:
    """A plain job function."""


async def async_job_fn(ctx: dict[str, Any]) -> None:
    """An async job function."""


def raised(call: Callable[[], Any]) -> BaseException:
    """The exception ``call`` raised (awaiting what it returns); fails if it raised none."""
    try:
        result = call()
        if inspect.isawaitable(result):
            asyncio.run(_wait(result))
    except BaseException as exc:  # what is raised is what is checked
        return exc
    pytest.fail(f"no error raised (it returned {result!r:.80})")


async def _wait(awaitable: Any) -> Any:
    return await awaitable


def check(exc: BaseException, expected: type[JobwireError]) -> None:
    """``exc`` is ``expected``, hence a JobwireError and none of Python's or redis-py's own."""
    assert isinstance(exc, expected), f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
    assert isinstance(exc, JobwireError)
    assert type(exc).__module__.startswith("jobwire"), type(exc)
    assert type(exc) not in (ValueError, TypeError, KeyError, AttributeError)
    assert not isinstance(exc, redis.exceptions.RedisError)


def on_client(kind: str, url: str, call: Call, **options: Any) -> BaseException:
    """What ``call(client)`` raises for a client of ``kind`` (built, used and closed)."""
    if kind == "sync":
        client = Client.from_url(url, **options)
        try:
            return raised(lambda: call(client))
        finally:
            client.close()
    if kind == "memory":
        return raised(lambda: call(MemoryClient(**options)))

    async def main() -> BaseException:
        make = AsyncClient.from_url if kind == "async" else AsyncMemoryClient.from_url
        aclient = make(url, **options)
        try:
            try:
                result = call(aclient)
                if inspect.isawaitable(result):
                    await result
            except BaseException as exc:
                return exc
            pytest.fail("no error raised")
        finally:
            await aclient.close()

    return asyncio.run(main())


CLIENT_KINDS = ["sync", "async", "memory", "memory-async"]
NOW = datetime.now(timezone.utc)

#: Bad calls on a client, with the error each must raise (the same for every client kind).
CLIENT_CALLS: dict[str, tuple[Call, type[JobwireError]]] = {
    "_queue_name with a brace": (lambda c: c.enqueue("f", _queue_name="x}"), InvalidArgument),
    "_queue_name empty": (lambda c: c.enqueue("f", _queue_name=""), InvalidArgument),
    "_queue_name a number": (lambda c: c.enqueue("f", _queue_name=5), InvalidArgument),
    "_job_id a number": (lambda c: c.enqueue("f", _job_id=5), InvalidArgument),
    "_job_id empty": (lambda c: c.enqueue("f", _job_id=""), InvalidArgument),
    "_job_id too long": (lambda c: c.enqueue("f", _job_id="x" * 1025), InvalidArgument),
    "_defer_by text": (lambda c: c.enqueue("f", _defer_by="soon"), InvalidArgument),
    "_defer_by NaN": (lambda c: c.enqueue("f", _defer_by=float("nan")), InvalidArgument),
    "_defer_by infinite": (lambda c: c.enqueue("f", _defer_by=float("inf")), InvalidArgument),
    "_defer_by a bool": (lambda c: c.enqueue("f", _defer_by=True), InvalidArgument),
    "_defer_by an object": (lambda c: c.enqueue("f", _defer_by=object()), InvalidArgument),
    "_defer_until text": (lambda c: c.enqueue("f", _defer_until="tomorrow"), InvalidArgument),
    "_defer_until and _defer_by": (
        lambda c: c.enqueue("f", _defer_until=NOW, _defer_by=1),
        InvalidArgument,
    ),
    "_expires text": (lambda c: c.enqueue("f", _expires="later"), InvalidArgument),
    "_expires in the past": (lambda c: c.enqueue("f", _expires=-1), InvalidArgument),
    "_expires before the start": (
        lambda c: c.enqueue(
            "f", _defer_until=NOW + timedelta(hours=1), _expires=NOW + timedelta(minutes=1)
        ),
        InvalidArgument,
    ),
    "_serializer unknown": (lambda c: c.enqueue("f", _serializer="xml"), InvalidArgument),
    "_serializer a number": (lambda c: c.enqueue("f", _serializer=1), InvalidArgument),
    "_serializer empty": (lambda c: c.enqueue("f", _serializer=""), InvalidArgument),
    "_job_try 0": (lambda c: c.enqueue("f", _job_try=0), InvalidArgument),
    "_job_try text": (lambda c: c.enqueue("f", _job_try="1"), InvalidArgument),
    "_job_try a bool": (lambda c: c.enqueue("f", _job_try=True), InvalidArgument),
    "_job_try beyond the wire": (lambda c: c.enqueue("f", _job_try=2**40), EncodeError),
    "_headers a list": (lambda c: c.enqueue("f", _headers=["a"]), InvalidArgument),
    "_headers not strings": (lambda c: c.enqueue("f", _headers={"a": 1}), EncodeError),
    "an argument without encoding": (lambda c: c.enqueue("f", object()), UnsupportedValue),
    "a function as an argument": (lambda c: c.enqueue("f", job_fn), UnsupportedValue),
    "a keyword argument without encoding": (
        lambda c: c.enqueue("f", when=object()),
        UnsupportedValue,
    ),
    "function a number": (lambda c: c.enqueue(5), InvalidArgument),
    "function empty": (lambda c: c.enqueue(""), EncodeError),
    "enqueue_many with a number": (lambda c: c.enqueue_many([5]), InvalidArgument),
    'job("")': (lambda c: c.job(""), InvalidArgument),
    "job(5)": (lambda c: c.job(5), InvalidArgument),
    "job() in a bad queue": (lambda c: c.job("a", queue_name="a}"), InvalidArgument),
    "dead_letters(limit=-1)": (lambda c: c.dead_letters(limit=-1), InvalidArgument),
    "dead_letters(limit=0)": (lambda c: c.dead_letters(limit=0), InvalidArgument),
    "dead_letters(limit='x')": (lambda c: c.dead_letters(limit="x"), InvalidArgument),
    "dead_letters of a bad queue": (lambda c: c.dead_letters("a{"), InvalidArgument),
    "queued_jobs(limit=-1)": (lambda c: c.queued_jobs(limit=-1), InvalidArgument),
    "queue_size of an empty name": (lambda c: c.queue_size(""), InvalidArgument),
    "result(timeout='soon')": (lambda c: c.job("j").result(timeout="soon"), InvalidArgument),
    "abort(timeout=NaN)": (lambda c: c.job("j").abort(timeout=float("nan")), InvalidArgument),
    # bad state: the right subclass, not a crash
    "result of an unknown job": (lambda c: c.job("nobody").result(timeout=1), ResultNotFound),
    "requeue an unknown dead letter": (
        lambda c: c.requeue_dead_letter("1-1"),
        JobNotFound,
    ),
}


@pytest.mark.parametrize("kind", CLIENT_KINDS)
@pytest.mark.parametrize("name", list(CLIENT_CALLS))
def test_bad_client_calls_raise_a_jobwire_error(kind: str, name: str, redis_url: str) -> None:
    call, expected = CLIENT_CALLS[name]
    check(on_client(kind, redis_url, call), expected)


@pytest.mark.parametrize("kind", CLIENT_KINDS)
def test_waiting_too_long_is_a_job_timeout(kind: str, redis_url: str) -> None:
    async def queued_then_wait(c: Any) -> None:
        job = await c.enqueue("f")
        await job.result(timeout=0.05)

    def call(c: Any) -> Any:
        if kind in ("sync", "memory"):
            return c.enqueue("f").result(timeout=0.05)
        return queued_then_wait(c)

    check(on_client(kind, redis_url, call), JobTimeout)


#: Client options that make no sense (Client, AsyncClient, their twins, from_url alike).
BAD_OPTIONS: dict[str, dict[str, Any]] = {
    "serializer unknown": {"serializer": "xml"},
    "prefix with a brace": {"prefix": "a{"},
    "prefix empty": {"prefix": ""},
    "queue_name empty": {"queue_name": ""},
    "accept unknown": {"accept": ["yaml"]},
    "accept one string": {"accept": "json"},
    "accept a number": {"accept": 5},
    "max_size 0": {"max_size": 0},
    "max_size text": {"max_size": "big"},
    "verify_keys without signing_key": {"verify_keys": ["k"]},
    "verify_keys one string": {"signing_key": "k", "verify_keys": "old"},
    "signing_key empty": {"signing_key": ""},
    "signing_key a number": {"signing_key": 5},
    "keep_result text": {"keep_result": "long"},
    "an unknown option": {"queue": "x"},
}


@pytest.mark.parametrize("name", list(BAD_OPTIONS))
@pytest.mark.parametrize(
    "make",
    [
        lambda o: Client(**o),
        lambda o: Client.from_url(NOWHERE, **o),
        lambda o: AsyncClient(**o),
        lambda o: AsyncClient.from_url(NOWHERE, **o),
        lambda o: AsyncClient.connect(NOWHERE, **o),
        lambda o: MemoryClient(**o),
        lambda o: AsyncMemoryClient(**o),
        lambda o: AsyncMemoryClient.connect(NOWHERE, **o),
    ],
    ids=[
        "Client",
        "Client.from_url",
        "AsyncClient",
        "AsyncClient.from_url",
        "AsyncClient.connect",
        "MemoryClient",
        "AsyncMemoryClient",
        "AsyncMemoryClient.connect",
    ],
)
def test_bad_client_options_are_invalid_arguments(make: Call, name: str) -> None:
    check(raised(lambda: make(BAD_OPTIONS[name])), InvalidArgument)


#: URLs that are wrong, with what the message must name.
BAD_URLS: dict[str, tuple[Any, str]] = {
    "no scheme": ("localhost:6501", "no scheme"),
    "http": ("http://x", "'http'"),
    "port not a number": ("redis://127.0.0.1:abc/0", "'abc'"),
    "port out of range": ("redis://127.0.0.1:99999/0", "'99999'"),
    "database not a number": ("redis://127.0.0.1:1/zero", "'zero'"),
    "database negative": ("redis://127.0.0.1:1/-1", "'-1'"),
    "database of two parts": ("redis://127.0.0.1:1/1/2", "'1/2'"),
    "database query not a number": ("redis://127.0.0.1:1?db=x", "db"),
    "database query negative": ("redis://127.0.0.1:1?db=-1", "negative"),
    "query value wrong": ("redis://127.0.0.1:1/0?socket_timeout=abc", "socket_timeout"),
    "query option unknown": ("redis://127.0.0.1:1/0?sockettimeout=1", "sockettimeout"),
    "unix without a path": ("unix://", "socket"),
    "unix database not a number": ("unix:///tmp/x.sock?db=abc", "db"),
    "sentinel port": ("redis+sentinel://h:abc/mymaster", "'abc'"),
    "sentinel database": ("redis+sentinel://h:1/mymaster/zero", "'zero'"),
    "sentinel without master": ("redis+sentinel://h:1", "master"),
    "sentinel without host": ("redis+sentinel://:1/mymaster", "host"),
    "empty": ("", "no scheme"),
    "not a string": (5, "int"),
}


@pytest.mark.parametrize("name", list(BAD_URLS))
@pytest.mark.parametrize(
    "make",
    [
        RedisSettings.from_url,
        Client.from_url,
        AsyncClient.from_url,
        AsyncClient.connect,
        lambda url: Worker(functions=[job_fn], redis_settings=url, handle_signals=False),
    ],
    ids=["RedisSettings.from_url", "Client.from_url", "AsyncClient.from_url",
         "AsyncClient.connect", "Worker"],
)  # fmt: skip
def test_bad_urls_are_invalid_arguments_naming_the_part(make: Call, name: str) -> None:
    url, part = BAD_URLS[name]
    exc = raised(lambda: make(url))
    check(exc, InvalidArgument)
    assert part in str(exc)


@pytest.mark.parametrize(
    "make", [RedisSettings.from_url, Client.from_url, AsyncClient.from_url, AsyncClient.connect]
)
def test_a_url_that_is_none_is_an_invalid_argument(make: Call) -> None:
    check(raised(lambda: make(None)), InvalidArgument)


@pytest.mark.parametrize("url", ["localhost:6501", "http://x", "memcached://h:1/0"])
def test_an_unknown_scheme_lists_the_valid_ones(url: str) -> None:
    exc = raised(lambda: RedisSettings.from_url(url))
    check(exc, InvalidArgument)
    for scheme in ("redis://", "rediss://", "unix://", "redis+sentinel://"):
        assert scheme in str(exc)


def test_a_url_error_never_shows_the_password() -> None:
    exc = raised(lambda: RedisSettings.from_url("redis://app:s3cret@127.0.0.1:abc/0"))
    check(exc, InvalidArgument)
    assert "s3cret" not in str(exc)


def test_good_urls_still_parse() -> None:
    assert RedisSettings.from_url("REDIS://h:1/2").url == "redis://h:1/2"
    assert RedisSettings.from_url("redis://h:1/").url == "redis://h:1/"
    assert RedisSettings.from_url("redis://h/3?socket_keepalive=true").url is not None
    assert RedisSettings.from_url("rediss://h:1/0?ssl_ca_certs=/ca.crt").url is not None
    assert RedisSettings.from_url("unix:///run/redis.sock?db=2").url is not None
    s = RedisSettings.from_url("redis+sentinel://h1:1,h2/main/2", retries=0)
    assert (s.sentinels, s.database, s.retries) == ((("h1", 1), ("h2", 26379)), 2, 0)


BAD_SETTINGS: dict[str, Callable[[], Any]] = {
    "port text": lambda: RedisSettings(port="x"),
    "port 0": lambda: RedisSettings(port=0),
    "database negative": lambda: RedisSettings(database=-1),
    "retries negative": lambda: RedisSettings(retries=-1),
    "max_connections 0": lambda: RedisSettings(max_connections=0),
    "socket_timeout 0": lambda: RedisSettings(socket_timeout=0),
    "connect_timeout text": lambda: RedisSettings(connect_timeout="5"),
    "ssl_cert_reqs unknown": lambda: RedisSettings(ssl_cert_reqs="maybe"),
    "host empty": lambda: RedisSettings(host=""),
    "sentinels not pairs": lambda: RedisSettings(sentinels=["h:1"]),
    "a Sentinel URL as url=": lambda: RedisSettings(url="redis+sentinel://h:1/m"),
    "url= with a bad port": lambda: RedisSettings(url="redis://h:abc/0"),
    "from_url with an unknown field": lambda: RedisSettings.from_url(NOWHERE, retrys=1),
    "with_options unknown field": lambda: RedisSettings().with_options(prot=1),
    "with_options bad value": lambda: RedisSettings().with_options(port=-1),
    "client settings bad": lambda: Client(settings=RedisSettings(retries="3")),
}


@pytest.mark.parametrize("name", list(BAD_SETTINGS))
def test_bad_redis_settings_are_invalid_arguments(name: str) -> None:
    check(raised(BAD_SETTINGS[name]), InvalidArgument)


def _envelope(**changes: Any) -> JobEnvelope:
    return JobEnvelope(id="j", function="f", enqueued_ms=0, **changes)


BAD_CODECS: dict[str, Callable[[], Any]] = {
    "accept unknown": lambda: Codec(accept=["yaml"]),
    "accept one string": lambda: Codec(accept="json"),
    "accept not a collection": lambda: Codec(accept=5),
    "accept unhashable": lambda: Codec(accept=[["json"]]),
    "max_size 0": lambda: Codec(max_size=0),
    "max_size text": lambda: Codec(max_size="1"),
    "max_size a bool": lambda: Codec(max_size=True),
    "verify_keys without signing_key": lambda: Codec(verify_keys=["k"]),
    "verify_keys one string": lambda: Codec(signing_key="k", verify_keys="old"),
    "verify_keys not a collection": lambda: Codec(signing_key="k", verify_keys=5),
    "signing_key empty": lambda: Codec(signing_key=""),
    "signing_key empty bytes": lambda: Codec(signing_key=b""),
    "signing_key a number": lambda: Codec(signing_key=5),
    "a job of an unknown format": lambda: Codec().encode_job(_envelope(format="xml")),
    "a result of an unknown format": lambda: Codec().encode_result(
        replace(
            ResultEnvelope.of(_envelope(), outcome="success", started_ms=0, finished_ms=0),
            format="yaml",
        )
    ),
}


@pytest.mark.parametrize("name", list(BAD_CODECS))
def test_bad_codec_arguments_are_invalid_arguments(name: str) -> None:
    exc = raised(BAD_CODECS[name])
    check(exc, InvalidArgument)
    assert isinstance(exc, ValueError)  # as it always was, for code that catches that


BAD_FUNCTIONS: dict[str, Callable[[], Any]] = {
    "executor unknown": lambda: func(job_fn, executor="gpu"),
    "loop for a plain function": lambda: func(job_fn, executor="loop"),
    "thread for an async function": lambda: func(async_job_fn, executor="thread"),
    "max_tries 0": lambda: func(job_fn, max_tries=0),
    "max_tries text": lambda: func(job_fn, max_tries="3"),
    "timeout text": lambda: func(job_fn, timeout="1m"),
    "timeout negative": lambda: func(job_fn, timeout=-1),
    "timeout 0": lambda: func(job_fn, timeout=0),
    "keep_result negative": lambda: func(job_fn, keep_result=-1),
    "not callable": lambda: func(5),
    "name empty": lambda: func(job_fn, name=""),
    "no name to be had": lambda: func(functools.partial(job_fn)),
    "cron hour out of range": lambda: cron(job_fn, hour=25),
    "cron second out of range": lambda: cron(job_fn, second=60),
    "cron weekday unknown": lambda: cron(job_fn, weekday="xyz"),
    "cron minute text": lambda: cron(job_fn, minute="x"),
    "cron minute a float": lambda: cron(job_fn, minute=1.5),
    "cron minute a bool": lambda: cron(job_fn, minute=True),
    "cron hour an empty set": lambda: cron(job_fn, hour=set()),
    "cron hour not a collection": lambda: cron(job_fn, hour=object()),
    "cron February 30th": lambda: cron(job_fn, month=2, day={30, 31}),
    "cron April 31st": lambda: cron(job_fn, month={4, 6}, day=31),
    "cron job_id empty": lambda: cron(job_fn, job_id=""),
    "cron bad options": lambda: cron(job_fn, max_tries=0),
}


@pytest.mark.parametrize("name", list(BAD_FUNCTIONS))
def test_bad_function_and_cron_options_are_invalid_arguments(name: str) -> None:
    check(raised(BAD_FUNCTIONS[name]), InvalidArgument)


def test_a_possible_schedule_is_kept() -> None:
    assert cron(job_fn, month=2, day=29).day == {29}  # leap years have it
    assert cron(job_fn, weekday=["Mon", "friday"], hour=3).weekday == {0, 4}


BAD_WORKERS: dict[str, dict[str, Any]] = {
    "max_jobs 0": {"max_jobs": 0},
    "an unknown setting": {"max_job": 3},
    "queue_name with a brace": {"queue_name": "a}"},
    "queue_names with an empty one": {"queue_names": ["a", ""]},
    "queue_names one string": {"queue_names": "abc"},
    "prefix empty": {"prefix": ""},
    "functions with a number": {"functions": [job_fn, 5]},
    "functions not a collection": {"functions": 5},
    "cron_jobs with a number": {"cron_jobs": [5]},
    "redis_settings a number": {"redis_settings": 5},
    "redis_settings an unknown scheme": {"redis_settings": "http://x"},
    "redis_settings a bad port": {"redis_settings": "redis://h:abc/0"},
    "timezone text": {"timezone": "Europe/Paris"},
    "accept unknown": {"accept": ["yaml"]},
    "signing_key a number": {"signing_key": 5},
    "job_timeout text": {"job_timeout": "5m"},
    "keep_result NaN": {"keep_result": float("nan")},
    "max_tries text": {"max_tries": "3"},
    "a hook not callable": {"on_startup": "setup"},
    "name empty": {"name": ""},
}


@pytest.mark.parametrize("name", list(BAD_WORKERS))
def test_bad_worker_settings_are_invalid_arguments(name: str) -> None:
    settings = {"functions": [job_fn], "redis_settings": NOWHERE, "handle_signals": False}
    check(raised(lambda: Worker(**{**settings, **BAD_WORKERS[name]})), InvalidArgument)


def test_a_bad_serializer_is_one_error_with_one_message(redis_url: str) -> None:
    setting = raised(lambda: Client.from_url(redis_url, serializer="xml"))
    with Client.from_url(redis_url) as client:
        per_job = raised(lambda: client.enqueue("f", _serializer="xml"))
    twin_setting = raised(lambda: MemoryClient(serializer="xml"))
    twin_per_job = raised(lambda: MemoryClient().enqueue("f", _serializer="xml"))
    codec = raised(lambda: Codec().encode_job(_envelope(format="xml")))
    errors = [setting, per_job, twin_setting, twin_per_job, codec]
    assert {type(e) for e in errors} == {InvalidArgument}
    assert len({str(e) for e in errors}) == 1
    assert "'xml'" in str(setting) and "'msgpack'" in str(setting)


# ---------------------------------------------------------------- Redis refuses us


@dataclass
class Locked:
    """A redis-server of this test's own, started with ``--requirepass secret``."""

    port: int


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Locked]:
    if REDIS_SERVER is None:
        pytest.fail(MISSING_MESSAGE, pytrace=False)
    port = free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "secret",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path), "--daemonize", "no"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        admin = redis.Redis(port=port, password="secret", socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                admin.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.02)  # waiting for the server to listen
        admin.config_resetstat()
        admin.close()
        yield Locked(port)
    finally:
        proc.kill()
        proc.wait(10)


def refused(server: Locked, code: str) -> int:
    """How many times ``server`` answered with the error ``code`` (WRONGPASS, NOAUTH)."""
    with redis.Redis(port=server.port, password="secret") as admin:
        stats = admin.info("errorstats")
    return int(stats.get(f"errorstat_{code}", {}).get("count", 0))


CREDENTIALS = {
    "wrong password": (":wrong@", "WRONGPASS"),
    "unknown user": ("nobody:secret@", "WRONGPASS"),
    "no password": ("", "NOAUTH"),
}


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("credentials", list(CREDENTIALS))
def test_refused_credentials_are_a_redis_auth_error_at_once(
    locked: Locked, kind: str, credentials: str
) -> None:
    userinfo, code = CREDENTIALS[credentials]
    url = f"redis://{userinfo}127.0.0.1:{locked.port}/0"
    assert RedisSettings.from_url(url).retries == 3  # retries that must not be spent here
    started = time.monotonic()
    exc = on_client(kind, url, lambda c: c.enqueue("f"))
    elapsed = time.monotonic() - started
    check(exc, RedisAuthError)
    assert isinstance(exc, RedisError) and not isinstance(exc, RedisUnavailable)
    assert isinstance(exc.__cause__, redis.exceptions.AuthenticationError)
    assert refused(locked, code) == 1  # one attempt: not retried as if Redis were down
    assert elapsed < 0.5  # the reconnect backoff alone would take 0.7 s


def test_the_right_password_works(locked: Locked) -> None:
    with Client.from_url(f"redis://:secret@127.0.0.1:{locked.port}/0") as client:
        assert client.ping() is True
        assert client.enqueue("f") is not None


def test_a_worker_with_a_wrong_password_stops_with_a_redis_auth_error(
    locked: Locked,
) -> None:
    worker = Worker(
        functions=[job_fn],
        redis_settings=f"redis://:wrong@127.0.0.1:{locked.port}/0",
        handle_signals=False,
        burst=True,
    )
    started = time.monotonic()
    check(raised(worker.run), RedisAuthError)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_port_nothing_listens_on_is_redis_unavailable(kind: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    for call in (lambda c: c.ping(), lambda c: c.enqueue("f"), lambda c: c.queue_size()):
        exc = on_client(kind, url, call, queue_name="q")
        check(exc, RedisUnavailable)
        assert not isinstance(exc, RedisAuthError)
        assert isinstance(exc.__cause__, redis.exceptions.ConnectionError)
    exc = raised(lambda: AsyncClient.connect(url))
    check(exc, RedisUnavailable)


# -------------------------------------------------------------------- the tree


def _tree(module: Any) -> list[tuple[int, str]]:
    """The (depth, class name) of every class drawn in ``module``'s docstring tree."""
    doc = module.__doc__
    block = doc.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    lines = block.splitlines()
    drawn = [(0, lines[0].split()[0])]
    for line in lines[1:]:
        match = re.search(r"── (\w+)", line)
        if match:
            drawn.append(((match.start(1) - 4) // 4, match.group(1)))
    return drawn


@pytest.mark.parametrize("module", [jobwire.errors, jobwire.wire.errors], ids=lambda m: m.__name__)
def test_every_class_is_in_the_docstring_tree_under_its_base(module: Any) -> None:
    drawn = _tree(module)
    names = [name for _, name in drawn]
    assert len(names) == len(set(names)), "a class is drawn twice"
    classes = {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, JobwireError) and not name.startswith("_")
    }
    assert set(module.__all__) <= set(classes)
    # a former name kept as an alias is no class of its own; the tree names it beside its class
    aliases = {name for name, value in classes.items() if value.__name__ != name}
    for alias in aliases:
        assert f"``{alias}`` is its former name" in module.__doc__
        del classes[alias]
    assert set(names) == set(classes)  # every class, ScriptMissing too, and nothing else
    parents: list[str] = []
    for depth, name in drawn:
        del parents[depth:]
        if parents:
            assert issubclass(classes[name], classes[parents[-1]]), (name, parents[-1])
        parents.append(name)


def test_the_package_exports_the_whole_tree() -> None:
    for name in jobwire.errors.__all__:
        assert name in jobwire.__all__, name
        assert getattr(jobwire, name) is getattr(jobwire.errors, name)
    assert jobwire.RedisAuthError is RedisAuthError
    assert issubclass(RedisAuthError, RedisError)
    assert not issubclass(RedisAuthError, RedisUnavailable)
    # one tree, one set of classes: the wire's errors are the package's errors
    for name in jobwire.wire.errors.__all__:
        assert getattr(jobwire.wire, name) is getattr(jobwire, name), name
    assert issubclass(jobwire.wire.WireError, JobwireError)
    assert issubclass(InvalidArgument, ValueError)


def test_every_exported_exception_is_a_jobwire_error() -> None:
    exported = [getattr(jobwire, name) for name in jobwire.__all__]
    errors = [e for e in exported if isinstance(e, type) and issubclass(e, BaseException)]
    assert len(errors) == len(jobwire.errors.__all__)
    assert all(issubclass(e, JobwireError) for e in errors)
