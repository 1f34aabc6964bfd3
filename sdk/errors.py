"""Every error jobwire raises, in one tree.

Catch :class:`JobwireError` to catch anything jobwire raises for bad input, bad state or an
unavailable Redis::

    JobwireError                    the root
    ├── InvalidArgument             bad input: an argument, option, name, URL or setting that
    │                               makes no sense; the message names it (also a ValueError)
    ├── WireError                   a value or a message does not fit the wire format
    │   ├── EncodeError             a job or result cannot be encoded (a value out of the
    │   │   │                       wire's range: a job id of 2000 characters, a try of 2**40)
    │   │   └── UnsupportedValue    an argument / return value has no encoding in that format
    │   │                           (``.location``, ``.format``; also a TypeError)
    │   ├── DecodeError             stored bytes cannot be read (``.reason``, ``.header``)
    │   │   ├── MalformedMessage    not a JSON object or msgpack map at all
    │   │   ├── InvalidEnvelope     a field is missing or of the wrong type
    │   │   ├── UnsupportedVersion  unknown major version (names both versions)
    │   │   ├── FormatNotAccepted   e.g. pickle, when the reader did not opt in
    │   │   └── SignatureError      HMAC signature missing or wrong
    │   └── PayloadTooLarge         over the size limit (both an EncodeError and a DecodeError)
    ├── RedisError                  talking to Redis failed (redis-py's exception is the cause)
    │   ├── RedisUnavailable        cannot connect, connection lost, or Redis timed out, after
    │   │                           the reconnect attempts of ``RedisSettings.retries``
    │   ├── RedisAuthError          Redis refused the credentials: wrong password, unknown
    │   │                           user, or a password is needed (WRONGPASS, NOAUTH); raised
    │   │                           at once, never retried as if Redis were down
    │   ├── RedisCommandError       Redis refused a command (ACL, wrong type, bad database...)
    │   │   └── RedisOutOfMemory    Redis is full (maxmemory, noeviction): nothing was written
    │   ├── ReplicationTimeout      with ``wait_replicas``: fewer replicas than asked confirmed
    │   │                           an enqueue in time; the job *was* written on the master
    │   │                           (``.job_ids``, ``.acknowledged``, ``.wanted``)
    │   └── ScriptMissing           internal: a Lua script to load again (never reaches you)
    ├── ClientClosed                the client was closed: a call after ``close()``, or a wait
    │                               for a result that ``close()`` ended
    ├── JobNotFound                 no job (or dead-letter entry) with that id
    ├── ResultNotFound              the job is gone and no result was kept
    ├── WaitTimeout                 *your wait* for a result (or an abort) took longer than
    │                               asked; the job itself may still run (a TimeoutError;
    │                               ``JobTimeout`` is its former name, kept as an alias)
    └── JobFailed                   the job ended without success (``.result``, ``.error``)
        ├── JobTimedOut             *the job* ran out of its own time (outcome ``timeout``)
        └── JobAborted              it was aborted

One tree, two modules. The wire layer (:mod:`jobwire.wire`) imports nothing of jobwire, so
the root and the part of the tree that needs no I/O (:class:`JobwireError`,
:class:`InvalidArgument` and :class:`WireError` with its subclasses) are defined in
:mod:`jobwire.wire.errors`; this module re-exports those very classes and adds the errors
of talking to Redis and of jobs. So every wire error *is* a :class:`JobwireError` by
inheritance, whichever module it is imported from, and nothing is wrapped or re-raised:
``jobwire.EncodeError is jobwire.wire.EncodeError``.

Python's own exceptions never escape for bad input: a wrong type, an unknown option, a name
that cannot be part of a Redis key, a bad URL or port, an unknown serializer are all an
:class:`InvalidArgument`. redis-py's exceptions never escape either: they become a
:class:`RedisError` with the original as ``__cause__``. ``JobNotFound``, ``ResultNotFound``,
``WaitTimeout`` and ``JobFailed`` carry the job id (``.job_id``) where there is one. None of
these names shadows a builtin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobwire.wire.errors import (
    DecodeError,
    EncodeError,
    FormatNotAccepted,
    InvalidArgument,
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
    "ClientClosed",
    "DecodeError",
    "EncodeError",
    "FormatNotAccepted",
    "InvalidArgument",
    "InvalidEnvelope",
    "JobAborted",
    "JobFailed",
    "JobNotFound",
    "JobTimedOut",
    "JobTimeout",
    "JobwireError",
    "MalformedMessage",
    "PayloadTooLarge",
    "RedisAuthError",
    "RedisCommandError",
    "RedisError",
    "RedisOutOfMemory",
    "RedisUnavailable",
    "ReplicationTimeout",
    "ResultNotFound",
    "SignatureError",
    "UnsupportedValue",
    "UnsupportedVersion",
    "WaitTimeout",
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


class RedisAuthError(RedisError):
    """Redis refused the credentials (it answered WRONGPASS or NOAUTH).

    A wrong password, an unknown or disabled user, or no password where one is needed.
    Not a :class:`RedisUnavailable`: trying again cannot help, so it is raised at once,
    without the reconnect attempts a lost connection gets. Fix the user and password of
    the URL (``redis://user:password@host:6379/0``) or of :class:`~jobwire.RedisSettings`.
    """


class RedisCommandError(RedisError):
    """Redis answered a command with an error (missing ACL permission, OOM, wrong type...)."""


class RedisOutOfMemory(RedisCommandError):
    """Redis is at ``maxmemory`` with the ``noeviction`` policy and refused a write.

    Nothing was written: jobwire's writing scripts are refused whole, before they run.
    Free memory (or raise ``maxmemory``) and call again.
    """


class ReplicationTimeout(RedisError):
    """Fewer replicas than ``RedisSettings.wait_replicas`` confirmed an enqueue in time.

    Redis ``WAIT`` returned ``acknowledged`` < ``wanted`` within ``wait_timeout``. The
    jobs (``job_ids``) *were* written on the master and are queued there: they run if that
    master stays up, and may be lost if it fails before its replicas catch up. Enqueue
    again with the same ``_job_id`` to be sure: a duplicate of a queued job is refused.
    """

    def __init__(
        self, message: str, *, job_ids: tuple[str, ...], acknowledged: int, wanted: int
    ) -> None:
        super().__init__(message)
        self.job_ids = job_ids
        self.acknowledged = acknowledged
        self.wanted = wanted


class ScriptMissing(RedisError):
    """Internal: EVALSHA found no script (after a restart or SCRIPT FLUSH); it is reloaded."""


class ClientClosed(JobwireError):
    """The client was closed: nothing more goes to Redis through it.

    Raised by any call made after ``close()``, and by a call still waiting when another
    thread or task closes the client (a ``job.result()``), which ``close()`` ends at once
    rather than leave it to reconnect. A closed client stays closed: make another. A call
    cut short so may have been carried out, as with :class:`RedisUnavailable`: enqueue
    again with the same ``_job_id`` to be sure, and the job exists once. A call refused
    before it started changed nothing.
    (A wait on a Redis Cluster, whose client sends a lost call again by itself, or on a
    redis-py client of your own, which ``close()`` leaves open, ends at its next round
    trip: within ``max_block`` seconds, 4 by default.)
    """

    def __init__(self, message: str = "the client was closed: make another one") -> None:
        super().__init__(message)


class _JobError(JobwireError):
    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobNotFound(_JobError):
    """No job with this id exists (not queued, not running, no result kept)."""


class ResultNotFound(_JobError):
    """The job is no longer queued or running, and no result of it is kept."""


class WaitTimeout(_JobError, TimeoutError):
    """Waiting for a job's result (or its abort) took longer than the given timeout.

    It says nothing of the job, which may still be queued or running: wait again, or look
    at ``job.status()``. A job that ran out of *its own* time is :class:`JobTimedOut`.
    """


#: The former name of :class:`WaitTimeout` (kept so that existing code goes on working).
JobTimeout = WaitTimeout


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


class JobTimedOut(JobFailed):
    """The job ran longer than its timeout and was stopped (its outcome is ``timeout``).

    Not to be confused with :class:`WaitTimeout`, which is about your wait for a result.
    """


class JobAborted(JobFailed):
    """The job was aborted (before it started, or while it ran)."""
