"""A worker's settings, validated once: :class:`WorkerConfig`.

The names are arq's (``functions``, ``max_jobs``, ``job_timeout``...), given as keyword
arguments of ``Worker`` or as attributes of a settings class. An unknown name is refused
with the closest known one, so a typo never silently falls back to a default; a settings
class lists attributes of its own that are no settings in ``extra_settings``.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from typing import Any

from jobwire import defaults
from jobwire.consumer import DEFAULT_DEAD_LETTER_CAP, DEFAULT_LEASE
from jobwire.errors import InvalidArgument
from jobwire.keys import check_name
from jobwire.models import seconds
from jobwire.partitions import Partitions
from jobwire.settings import RedisSettings
from jobwire.wire import DEFAULT_ACCEPT, DEFAULT_MAX_SIZE, Format

from .attempt import Defaults
from .cron import CronJob
from .functions import DEFAULT_MAX_TRIES, Function, func

__all__ = ["EXTRA_SETTINGS", "Hook", "WorkerConfig"]

Hook = Callable[[dict[str, Any]], Awaitable[Any] | Any]
HOOKS = ("on_startup", "on_shutdown", "on_job_start", "on_job_end", "after_job_end")
#: the attribute of a settings class naming its attributes that are not worker settings
EXTRA_SETTINGS = "extra_settings"
#: the two names of where Redis is; an override of one replaces a setting of either
REDIS_NAMES = frozenset({"redis_settings", "redis_url"})


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    """Every setting of a worker, checked when it is built (see ``Worker`` for their use)."""

    functions: Sequence[Function | Callable[..., Any]] = ()
    queue_name: str = defaults.DEFAULT_QUEUE
    queue_names: Sequence[str] | None = None
    cron_jobs: Sequence[CronJob] = ()
    redis_settings: RedisSettings | str | None = None
    #: the Redis URL, another way to give ``redis_settings`` (not both)
    redis_url: str | None = None
    prefix: str = defaults.PREFIX
    burst: bool = False
    max_burst_jobs: int = -1
    max_jobs: int = 10
    job_timeout: float | timedelta | None = 300
    keep_result: float | timedelta = defaults.KEEP_RESULT
    keep_result_forever: bool = False
    max_tries: int = DEFAULT_MAX_TRIES
    retry_backoff: float = 1.0
    allow_abort_jobs: bool = False
    job_completion_wait: float = 0
    #: seconds between refreshes of the health record (it expires after three missed ones)
    health_check_interval: float = 5
    lease: float = DEFAULT_LEASE
    accept: Iterable[Format] = DEFAULT_ACCEPT
    signing_key: bytes | str | None = None
    verify_keys: Iterable[bytes | str] = ()
    max_size: int = DEFAULT_MAX_SIZE
    thread_workers: int | None = None
    process_workers: int | None = None
    on_startup: Hook | None = None
    on_shutdown: Hook | None = None
    on_job_start: Hook | None = None
    on_job_end: Hook | None = None
    after_job_end: Hook | None = None
    ctx: Mapping[str, Any] | None = None
    handle_signals: bool = True
    name: str | None = None
    dead_letter_cap: int = DEFAULT_DEAD_LETTER_CAP
    timezone: timezone = timezone.utc
    #: how long a job for a function this worker lacks is handed back to the queue for a
    #: worker that has it (a rolling deploy) before it is dead-lettered ``unknown_function``;
    #: None: 300 s, or 0 in burst mode (a burst worker would otherwise wait out the grace)
    unknown_function_grace: float | timedelta | None = None
    #: an event loop blocked for longer than this (seconds) is logged with the job(s) on it
    loop_lag_warning: float = 1.0
    #: write lifecycle events, progress events and stats (False: none, e.g. to measure them)
    events: bool = True
    #: cap of each queue's event stream
    max_events: int = defaults.MAX_EVENTS
    #: serve Prometheus metrics on this port (``/metrics``; 0: any free port; None: off)
    metrics_port: int | None = None
    #: the address the metrics endpoint listens on (all interfaces by default)
    metrics_host: str = "0.0.0.0"
    #: sharded queues: ``{"emails": 3}`` serves the 3 partitions of queue ``emails``
    #: (producers need the same setting; see the README, Scaling)
    partitions: Mapping[str, int] | None = None

    # derived in __post_init__
    registry: dict[str, Function] = field(init=False, repr=False)
    redis: RedisSettings = field(init=False, repr=False)
    worker_name: str = field(init=False)
    #: the queues served, a sharded queue's partitions each in its place
    queues: tuple[str, ...] = field(init=False)
    #: the queues named by the settings and tasks (a sharded queue once)
    logical_queues: tuple[str, ...] = field(init=False, repr=False)
    #: tasks whose own queue this worker does not serve (function name -> queue)
    unserved: dict[str, str | None] = field(init=False, repr=False)
    defaults: Defaults = field(init=False, repr=False)
    grace: float = field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: derived fields are set once, here
        registry: dict[str, Function] = {}
        for item in _items(self.functions, "functions"):
            function = item if isinstance(item, Function) else func(item)
            registry[function.name] = function  # a task (``@jobwire.task``) is a Function
        for job in _items(self.cron_jobs, "cron_jobs"):
            if not isinstance(job, CronJob):
                raise InvalidArgument(f"cron_jobs holds cron(...) schedules, not {job!r:.40}")
            registry.setdefault(job.name, job.function)
        if not registry:
            raise InvalidArgument(
                "a worker needs functions to run: give functions=[...] (or cron_jobs=[...])"
            )
        set_(self, "registry", registry)
        settings = self.redis_settings
        if self.redis_url is not None:
            if settings is not None:
                raise InvalidArgument("give redis_settings or redis_url, not both")
            if not isinstance(self.redis_url, str):
                raise InvalidArgument(
                    f"redis_url is a URL, not {type(self.redis_url).__qualname__}"
                )
            settings = self.redis_url
        if isinstance(settings, str):
            settings = RedisSettings.from_url(settings)
        elif settings is not None and not isinstance(settings, RedisSettings):
            raise InvalidArgument(
                f"redis_settings is a RedisSettings or a URL, not {type(settings).__qualname__}"
            )
        set_(
            self,
            "redis",
            settings or RedisSettings.from_url(defaults.redis_url()),
        )
        unique = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        set_(self, "worker_name", self.name or unique)
        queues = self.queue_names if self.queue_names else (self.queue_name,)
        if isinstance(queues, str):
            raise InvalidArgument("queue_names is a list of names; one queue is queue_name=")
        names = [check_name("queue name", q) for q in _items(queues, "queues")]
        # a task that names its queue is served there too, unless queue_names says which
        # queues this worker serves (then a task elsewhere is only warned about, at startup)
        own = [f.enqueue_options.queue_name for f in registry.values()]
        elsewhere = sorted({q for q in own if q is not None and q not in names})
        if not self.queue_names:
            names += elsewhere
        split = Partitions(self.partitions)
        set_(self, "logical_queues", tuple(dict.fromkeys(names)))
        set_(self, "queues", tuple(p for q in self.logical_queues for p in split.of_queue(q)))
        set_(
            self,
            "unserved",
            {f.name: f.enqueue_options.queue_name for f in registry.values()
             if f.enqueue_options.queue_name not in (None, *names)},
        )  # fmt: skip
        timeout = None if self.job_timeout is None else seconds(self.job_timeout)
        set_(
            self,
            "defaults",
            Defaults(
                max_tries=self.max_tries,
                job_timeout=timeout,
                keep_result=seconds(self.keep_result),
                keep_result_forever=self.keep_result_forever,
                retry_backoff=self.retry_backoff,
            ),
        )
        grace = self.unknown_function_grace
        set_(self, "grace", (0.0 if self.burst else 300.0) if grace is None else seconds(grace))
        self._validate()

    def _validate(self) -> None:
        positive = {
            "max_jobs": self.max_jobs,
            "max_tries": self.max_tries,
            "lease": self.lease,
            "health_check_interval": self.health_check_interval,
            "max_size": self.max_size,
            "dead_letter_cap": self.dead_letter_cap,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise InvalidArgument(
                    f"worker setting {name} must be a positive number, not {value!r}"
                )
        for name in ("job_completion_wait", "retry_backoff", "grace", "loop_lag_warning"):
            if getattr(self, name) < 0:
                raise InvalidArgument(f"worker setting {name} must not be negative")
        if not self.queues:
            raise InvalidArgument("a worker needs at least one queue")
        check_name("prefix", self.prefix)
        if not isinstance(self.timezone, tzinfo):
            raise InvalidArgument(f"timezone must be a tzinfo, not {self.timezone!r:.40}")
        for name in HOOKS:
            hook = getattr(self, name)
            if hook is not None and not callable(hook):
                raise InvalidArgument(f"worker setting {name} must be callable, not {hook!r:.40}")
        port = self.metrics_port
        if port is not None and (type(port) is not int or not 0 <= port <= 65535):
            raise InvalidArgument(f"metrics_port must be a port number, not {port!r:.40}")
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise InvalidArgument(f"worker name must be a non-empty string, not {self.name!r:.40}")

    @property
    def hooks(self) -> dict[str, Hook | None]:
        """The lifecycle hooks by name."""
        return {name: getattr(self, name) for name in HOOKS}

    @classmethod
    def build(cls, options: Mapping[str, Any]) -> WorkerConfig:
        """Build from keyword options, refusing unknown names with a suggestion."""
        known = cls.names()
        for name in options:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise InvalidArgument(f"unknown worker setting {name!r}{hint}")
        try:
            return cls(**options)
        except InvalidArgument:
            raise
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"invalid worker settings: {exc}") from exc

    @classmethod
    def names(cls) -> list[str]:
        """The names of every setting."""
        return [f.name for f in dataclasses.fields(cls) if f.init]

    @classmethod
    def from_settings(cls, settings: Any, overrides: Mapping[str, Any]) -> WorkerConfig:
        """Build from an arq-style settings class or object; ``overrides`` win.

        Every public attribute must be a setting, or be named in the settings'
        ``extra_settings`` (a collection of names); else InvalidArgument names it. Of a
        module (its imports and helpers are attributes too), only the names close to a
        setting's are refused.
        """
        known = cls.names()
        extra = getattr(settings, EXTRA_SETTINGS, ())
        if isinstance(extra, str) or not all(
            isinstance(n, str) for n in _items(extra, EXTRA_SETTINGS)
        ):
            raise InvalidArgument(f"{EXTRA_SETTINGS} is a collection of attribute names")
        allowed = {*known, *extra, EXTRA_SETTINGS}
        unknown = [n for n in _attributes(settings) if n not in allowed]
        if inspect.ismodule(settings):  # a module holds more than settings: catch near misses
            unknown = [n for n in unknown if difflib.get_close_matches(n, known, n=1)]
        if unknown:
            where = getattr(settings, "__name__", None) or type(settings).__name__
            named = ", ".join(_with_hint(n, [*known, EXTRA_SETTINGS]) for n in unknown)
            raise InvalidArgument(
                f"unknown worker setting{'s' if len(unknown) > 1 else ''} {named} in {where} "
                f"(name attributes that are not settings in {EXTRA_SETTINGS} = (...))"
            )
        options = {n: getattr(settings, n) for n in known if hasattr(settings, n)}
        if REDIS_NAMES & set(overrides):  # ``--url`` replaces either of the settings' two
            options = {n: v for n, v in options.items() if n not in REDIS_NAMES}
        options.update(overrides)
        return cls.build(options)


def _attributes(settings: Any) -> list[str]:
    """The public attributes of a settings class, object or module (not those of object)."""
    return sorted(n for n in dir(settings) if not n.startswith("_") and not hasattr(object, n))


def _with_hint(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name)


def _items(values: Iterable[Any], name: str) -> list[Any]:
    """The items of a setting that is a collection; InvalidArgument if it is not one."""
    try:
        return list(values)
    except TypeError:
        raise InvalidArgument(
            f"worker setting {name} must be a collection, not {type(values).__qualname__}"
        ) from None
