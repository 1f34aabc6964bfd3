"""Every error jobwire raises, in one tree.

::

    JobwireError                    root: catch this to catch anything jobwire raises on purpose
    └── WireError                   a value or message does not fit the wire format
        ├── EncodeError             a job or result cannot be encoded
        │   └── UnsupportedValue    an argument / return value has no encoding in that format
        ├── DecodeError             stored bytes cannot be read (``.reason``, ``.header``)
        │   ├── MalformedMessage    not a JSON object or msgpack map at all
        │   ├── InvalidEnvelope     a field is missing or of the wrong type
        │   ├── UnsupportedVersion  unknown major version (names both versions)
        │   ├── FormatNotAccepted   e.g. pickle, when the reader did not opt in
        │   └── SignatureError      HMAC signature missing or wrong
        └── PayloadTooLarge         over the size limit (both an EncodeError and a DecodeError)
    ├── RedisError                  talking to Redis failed
    │   ├── RedisUnavailable        cannot connect, connection lost, or Redis timed out
    │   └── RedisCommandError       Redis refused a command (ACL, OOM, wrong type, ...)
    │       └── RedisOutOfMemory    Redis is full (maxmemory, noeviction): nothing was written
    ├── InvalidArgument             a call's arguments do not make sense (also a ValueError)
    ├── JobNotFound                 no job with that id (queued, running or with a result)
    ├── ResultNotFound              the job is gone and no result was kept
    ├── JobTimeout                  waiting for a result took longer than asked (a TimeoutError)
    └── JobFailed                   the job ended without success (``.result``, ``.error``)
        └── JobAborted              it was aborted

None of these names shadows a builtin. Client errors carry the job id where there is one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobwire.wire.errors import (
    DecodeError,
    EncodeError,
    FormatNotAccepted,
    InvalidEnvelope,
    JobwireError,
    MalformedMessage,
    PayloadTooLarge,
    SignatureError,
    UnsupportedValue,
    UnsupportedVersion,
    WireError,
)

__all__ = [
    "DecodeError",
    "EncodeError",
    "FormatNotAccepted",
    "InvalidArgument",
    "InvalidEnvelope",
    "JobAborted",
    "JobFailed",
    "JobNotFound",
    "JobTimeout",
    "JobwireError",
    "MalformedMessage",
    "PayloadTooLarge",
    "RedisCommandError",
    "RedisError",
    "RedisOutOfMemory",
    "RedisUnavailable",
    "ResultNotFound",
    "SignatureError",
    "UnsupportedValue",
    "UnsupportedVersion",
    "WireError",
]


if TYPE_CHECKING:
    from jobwire.wire import ErrorRecord

    from .models import JobResult


class RedisError(JobwireError):
    """Talking to Redis failed; the original redis-py exception is the ``__cause__``."""


class RedisUnavailable(RedisError):
    """Redis cannot be reached: refused or lost connection, or a timeout.

    Clients reconnect by themselves on the next call once Redis is back.
    """


class RedisCommandError(RedisError):
    """Redis answered a command with an error (missing ACL permission, OOM, wrong type...)."""


class RedisOutOfMemory(RedisCommandError):
    """Redis is at ``maxmemory`` with the ``noeviction`` policy and refused a write.

    Nothing was written: jobwire's writing scripts are refused whole, before they run.
    Free memory (or raise ``maxmemory``) and call again.
    """


class ScriptMissing(RedisError):
    """Internal: EVALSHA found no script (after a restart or SCRIPT FLUSH); it is reloaded."""


class InvalidArgument(JobwireError, ValueError):
    """A call's arguments are inconsistent or out of range."""


class _JobError(JobwireError):
    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobNotFound(_JobError):
    """No job with this id exists (not queued, not running, no result kept)."""


class ResultNotFound(_JobError):
    """The job is no longer queued or running, and no result of it is kept."""


class JobTimeout(_JobError, TimeoutError):
    """Waiting for a job's result (or its abort) took longer than the given timeout."""


class JobFailed(_JobError):
    """The job ended without success.

    ``result`` is the whole :class:`~jobwire.JobResult`; ``error`` its portable error record
    (exception type as ``module.QualName``, message, traceback, causes).
    """

    def __init__(self, result: JobResult) -> None:
        error = result.error
        detail = f"{error.type}: {error.message}" if error is not None else result.outcome
        super().__init__(
            f"job {result.job_id} ({result.function}) failed with {result.outcome}: {detail}",
            job_id=result.job_id,
        )
        self.result = result
        self.outcome = result.outcome

    @property
    def error(self) -> ErrorRecord | None:
        """The portable record of what went wrong."""
        return self.result.error


class JobAborted(JobFailed):
    """The job was aborted (before it started, or while it ran)."""
