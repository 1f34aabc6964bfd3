"""A client's keyword options and the protocol core they build."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict

from jobwire.wire import DEFAULT_ACCEPT, DEFAULT_MAX_SIZE, Codec, Format

from . import defaults
from .errors import InvalidArgument
from .keys import DEFAULT_PREFIX
from .models import JobSpec
from .producer import Producer
from .settings import RedisSettings

__all__ = [
    "ClientOptions",
    "coalescing",
    "core_options",
    "event_cap",
    "make_producer",
    "specs_from",
]


def specs_from(items: Sequence[JobSpec | str | Callable[..., Any]]) -> list[JobSpec]:
    """Accept JobSpecs, or bare function names/callables meaning a call without arguments."""
    return [item if isinstance(item, JobSpec) else JobSpec(item) for item in items]


class ClientOptions(TypedDict, total=False):
    """Keyword options of ``Client``, ``AsyncClient`` and their ``from_url``.

    queue_name: default queue (``"default"``). prefix: key prefix (``"jobwire"``).
    serializer: default format of new jobs (``"json"``). accept: formats whose arguments and
    results this client decodes (json + msgpack; add ``"pickle"`` only for trusted Redis).
    signing_key / verify_keys: HMAC signing (see wire/SPEC.md). max_size: message size limit.
    keep_result: seconds to keep the result of a job aborted before it started.
    unique_while_result_kept: a job id stays taken while its result is kept, not only while
    the job is queued or running. events: False writes no lifecycle events or stats (for
    this client: the enqueued and aborted events). max_events: cap of each queue's event
    stream (10,000). partitions: sharded queues, ``{"emails": 3}`` spreads queue ``emails``
    over 3 partitions (give workers the same setting; see the README, Scaling). coalesce:
    False sends each enqueue in a round trip of its own instead of coalescing concurrent
    ones into pipelines (see :mod:`jobwire.coalesce`; no effect on the in-memory twins).
    """

    queue_name: str
    prefix: str
    serializer: Format
    accept: Iterable[Format]
    signing_key: bytes | str | None
    verify_keys: Iterable[bytes | str]
    max_size: int
    keep_result: float
    unique_while_result_kept: bool
    events: bool
    max_events: int
    partitions: Mapping[str, int]
    coalesce: bool


def core_options(socket_timeout: float | None, options: ClientOptions) -> dict[str, Any]:
    """The keyword arguments of :class:`Producer` that a client's options call for."""
    unknown = sorted(set(options) - ClientOptions.__optional_keys__)
    if unknown:
        known = ", ".join(sorted(ClientOptions.__optional_keys__))
        raise InvalidArgument(f"unknown client option {unknown[0]!r} (the options are {known})")
    codec = Codec(
        accept=options.get("accept", DEFAULT_ACCEPT),
        signing_key=options.get("signing_key"),
        verify_keys=options.get("verify_keys", ()),
        max_size=options.get("max_size", DEFAULT_MAX_SIZE),
    )
    # a blocking command must come back before the socket times out
    max_block = 4.0 if socket_timeout is None else max(0.2, socket_timeout - 1.0)
    return {
        "codec": codec,
        "prefix": options.get("prefix", DEFAULT_PREFIX),
        "queue_name": options.get("queue_name", defaults.DEFAULT_QUEUE),
        "serializer": options.get("serializer", "json"),
        "keep_result": options.get("keep_result", defaults.KEEP_RESULT),
        "unique_while_result_kept": options.get("unique_while_result_kept", False),
        "max_block": max_block,
        "max_events": event_cap(options.get("events", True), options.get("max_events")),
        "partitions": options.get("partitions"),
    }


def event_cap(events: object, max_events: object) -> int:
    """The event stream's cap for the ``events`` and ``max_events`` settings (0: none)."""
    if not isinstance(events, bool):
        raise InvalidArgument(f"events is True or False, not {events!r:.40}")
    cap = defaults.MAX_EVENTS if max_events is None else max_events
    if type(cap) is not int or cap < 1:
        raise InvalidArgument(f"max_events must be a whole number from 1, not {cap!r:.40}")
    return cap if events else 0


def coalescing(options: ClientOptions) -> bool:
    """Whether a client coalesces concurrent enqueues (the ``coalesce`` option, True)."""
    value = options.get("coalesce", True)
    if not isinstance(value, bool):
        raise InvalidArgument(f"coalesce is True or False, not {value!r:.40}")
    return value


def make_producer(settings: RedisSettings, options: ClientOptions) -> Producer:
    """Build a client's protocol core from its options and its connection's settings.

    The settings give the socket timeout (which bounds blocking reads) and the replicated
    acknowledgement (``wait_replicas``, ``wait_timeout``).
    """
    producer = Producer(**core_options(settings.socket_timeout, options))
    producer.wait_replicas = settings.wait_replicas
    producer.wait_timeout_ms = int(settings.wait_timeout * 1000)
    return producer
