"""jobwire: a Redis job queue for Python with one wire format for every language.

``jobwire.Client`` (blocking) and ``jobwire.AsyncClient`` (asyncio) enqueue jobs and read
their results; ``@jobwire.task`` declares a job function with its options (typed
enqueue); ``jobwire.worker`` runs them; ``jobwire.wire`` defines the format.

The clients are imported on first use, so ``import jobwire.wire`` loads no Redis or network
code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
    ClientClosed,
    DecodeError,
    EncodeError,
    FormatNotAccepted,
    InvalidArgument,
    InvalidEnvelope,
    JobAborted,
    JobFailed,
    JobNotFound,
    JobTimedOut,
    JobTimeout,
    JobwireError,
    MalformedMessage,
    PayloadTooLarge,
    RedisAuthError,
    RedisCommandError,
    RedisError,
    RedisOutOfMemory,
    RedisUnavailable,
    ReplicationTimeout,
    ResultNotFound,
    SignatureError,
    UnsupportedValue,
    UnsupportedVersion,
    WaitTimeout,
    WireError,
)

if TYPE_CHECKING:
    from .aio import AsyncClient, AsyncJob
    from .client import Client, Job
    from .events import Event, EventType, Progress
    from .models import DeadLetter, JobInfo, JobResult, JobSpec, JobStatus
    from .settings import RedisSettings
    from .stats import FunctionStats, Statistics, StatsBucket
    from .tasks import Backoff, Task, task

_LAZY = {
    "AsyncClient": ".aio",
    "AsyncJob": ".aio",
    "Client": ".client",
    "Job": ".client",
    "DeadLetter": ".models",
    "Event": ".events",
    "EventType": ".events",
    "FunctionStats": ".stats",
    "Progress": ".events",
    "Statistics": ".stats",
    "StatsBucket": ".stats",
    "JobInfo": ".models",
    "JobResult": ".models",
    "JobSpec": ".models",
    "JobStatus": ".models",
    "RedisSettings": ".settings",
    "Backoff": ".tasks",
    "Task": ".tasks",
    "task": ".tasks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jobwire' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AsyncClient",
    "AsyncJob",
    "Backoff",
    "Client",
    "ClientClosed",
    "DeadLetter",
    "DecodeError",
    "EncodeError",
    "Event",
    "EventType",
    "FormatNotAccepted",
    "FunctionStats",
    "InvalidArgument",
    "InvalidEnvelope",
    "Job",
    "JobAborted",
    "JobFailed",
    "JobInfo",
    "JobNotFound",
    "JobResult",
    "JobSpec",
    "JobStatus",
    "JobTimedOut",
    "JobTimeout",
    "JobwireError",
    "MalformedMessage",
    "PayloadTooLarge",
    "Progress",
    "RedisAuthError",
    "RedisCommandError",
    "RedisError",
    "RedisOutOfMemory",
    "RedisSettings",
    "RedisUnavailable",
    "ReplicationTimeout",
    "ResultNotFound",
    "SignatureError",
    "Statistics",
    "StatsBucket",
    "Task",
    "UnsupportedValue",
    "UnsupportedVersion",
    "WaitTimeout",
    "WireError",
    "__version__",
    "task",
]
