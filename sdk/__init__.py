"""jobwire: a Redis job queue for Python with one wire format for every language.

``jobwire.Client`` (blocking) and ``jobwire.AsyncClient`` (asyncio) enqueue jobs and read
their results; ``jobwire.worker`` runs them; ``jobwire.wire`` defines the format.

The clients are imported on first use, so ``import jobwire.wire`` loads no Redis or network
code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .errors import (
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
    from .models import DeadLetter, JobInfo, JobResult, JobSpec, JobStatus
    from .settings import RedisSettings

_LAZY = {
    "AsyncClient": ".aio",
    "AsyncJob": ".aio",
    "Client": ".client",
    "Job": ".client",
    "DeadLetter": ".models",
    "JobInfo": ".models",
    "JobResult": ".models",
    "JobSpec": ".models",
    "JobStatus": ".models",
    "RedisSettings": ".settings",
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
    "Client",
    "DeadLetter",
    "DecodeError",
    "EncodeError",
    "FormatNotAccepted",
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
    "RedisAuthError",
    "RedisCommandError",
    "RedisError",
    "RedisOutOfMemory",
    "RedisSettings",
    "RedisUnavailable",
    "ReplicationTimeout",
    "ResultNotFound",
    "SignatureError",
    "UnsupportedValue",
    "UnsupportedVersion",
    "WaitTimeout",
    "WireError",
    "__version__",
]
