"""What a finished job's result means to the caller: its value, or the error to raise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .errors import JobAborted, JobFailed, JobTimedOut, ResultNotFound
from .models import JobResult
from .partitions import SEPARATOR

__all__ = ["result_not_found", "unwrap"]

#: What ``result()`` raises for a failure, by outcome (JobFailed for the others).
_FAILURES: Final[dict[str, type[JobFailed]]] = {"aborted": JobAborted, "timeout": JobTimedOut}


def result_not_found(job_id: str, queue: str, elsewhere: Sequence[str]) -> ResultNotFound:
    """The error for a job with neither a state nor a result in ``queue``, saying where to look."""
    message = (
        f"job {job_id!r} is not queued or running in queue {queue!r} and no result of it is kept"
    )
    base = elsewhere[0].split(SEPARATOR, 1)[0] if elsewhere else ""
    if elsewhere and base != elsewhere[0]:
        message += (
            f"; it is in {elsewhere[0]!r}, a partition of the sharded queue {base!r}: "
            f"give this client the partitions= setting its producers use "
            f"(partitions={{{base!r}: K}})"
        )
    elif elsewhere:
        message += (
            f"; it is in queue {elsewhere[0]!r}: use "
            f"client.job({job_id!r}, queue_name={elsewhere[0]!r})"
        )
    else:
        message += " (if it was enqueued to another queue, pass queue_name=...)"
    return ResultNotFound(message, job_id=job_id)


def unwrap(result: JobResult) -> Any:
    """Return a successful result's value, or raise what its failure calls for.

    With pickle, the original exception is raised when the reader accepted it; otherwise
    :class:`JobAborted` for aborted jobs, :class:`JobTimedOut` for jobs that ran out of
    time and :class:`JobFailed` for every other failure.
    """
    if result.success:
        return result.value
    if result.exception is not None:
        raise result.exception from JobFailed(result)
    raise _FAILURES.get(result.outcome, JobFailed)(result)
