"""``jobwire job ID`` (one job, its history with tracebacks) and ``jobwire failures``.

Where ``failures`` comes from: there is no index of failures in Redis, and none is needed.
Every failed execution is kept in its job's result history (``P:{Q}:results:ID``, the
latest 10 executions, for the job's ``keep_result``), retried ones included, and the
messages no worker could run are in each queue's dead letters. ``failures`` reads both:
it scans the queue's result keys (SCAN, O(keys in the database), never blocking Redis),
so it is a command for an operator, not for a monitoring loop.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

import jobwire
from jobwire import DeadLetter, JobResult, JobStatus, defaults
from jobwire.protocol import Command, Gen, Pipeline

from .output import EXIT_NEGATIVE, ODD_DATA, REDIS_DOWN, clip, safe, when

__all__ = ["failures_command", "job_command"]

_DEAD_LETTERED = "jobwire.DeadLettered."
_DEAD_LETTER_SEARCH = 1000  # how many of a queue's latest dead letters `job` looks through
_OUTCOMES = {"success": "succeeded", "error": "failed", "timeout": "timed out"}


def _outcome(outcome: str) -> str:
    return _OUTCOMES.get(outcome, outcome)


def _print(text: str, indent: str = "") -> None:
    for line in text.splitlines() or [""]:
        print(indent + safe(line))


# ------------------------------------------------------------------------- job


def job_command(args: argparse.Namespace) -> int:
    """Show one job: where it is, what it runs, how it ended, and its history."""
    with jobwire.Client.from_url(args.url, prefix=args.prefix) as client:
        if args.queue:
            queues = [args.queue]
        else:  # the default queue first, then every known one
            known = client.queues()
            queues = [defaults.DEFAULT_QUEUE, *(q for q in known if q != defaults.DEFAULT_QUEUE)]
        for queue in queues:
            job = client.job(args.job_id, queue)
            try:
                status = job.status()
            except REDIS_DOWN:
                raise
            except ODD_DATA as exc:  # its key holds something else: say so, look on
                print(safe(f"queue {queue}: job {args.job_id!r}: {exc}"), file=sys.stderr)
                continue
            if status is not JobStatus.NOT_FOUND:
                _show_job(client, job, status)
                return 0
        for queue in queues:  # no trace of it left but, maybe, a dead letter
            letter = next(
                (d for d in _scanned_letters(client, queue) if d.job_id == args.job_id), None
            )
            if letter is not None:
                _show_dead_letter(letter)
                return 0
        where = f"queue {queues[0]}" if len(queues) == 1 else "queues " + ", ".join(queues)
        print(
            safe(f"jobwire: no job {args.job_id!r} in {where}; pass --queue Q to look in another"),
            file=sys.stderr,
        )
        return EXIT_NEGATIVE


def _scanned_letters(client: jobwire.Client, queue: str) -> list[DeadLetter]:
    try:
        return client.dead_letters(queue, _DEAD_LETTER_SEARCH)
    except REDIS_DOWN:
        raise
    except ODD_DATA:
        return []


def _show_dead_letter(letter: DeadLetter) -> None:
    _print(f"job {letter.job_id}")
    _print(f"queue: {letter.queue_name}", "  ")
    _print(f"status: dead letter {letter.entry_id} ({letter.reason})", "  ")
    _print(f"since: {when(letter.time)}", "  ")
    _print(f"why: {clip(letter.message, 500)}", "  ")
    _print(
        f"(jobwire dead requeue {letter.entry_id} --queue {letter.queue_name} runs it again)", "  "
    )


def _show_job(client: jobwire.Client, job: jobwire.Job, status: JobStatus) -> None:
    _print(f"job {job.job_id}")
    _print(f"queue: {job.queue_name}", "  ")
    _print(f"status: {status.value.replace('_', ' ')}", "  ")
    info, readable = None, True
    try:
        info = job.info()
    except REDIS_DOWN:
        raise
    except ODD_DATA as exc:
        _print(f"job data: cannot be read: {exc}", "  ")
        readable = False
    history, unreadable = _history(client, job)
    latest = history[0] if history else None
    if latest is not None and status is JobStatus.COMPLETE:
        detail = f" ({latest.error.type}: {latest.error.message})" if latest.error else ""
        _print(f"outcome: {_outcome(latest.outcome)}{detail}", "  ")
    function = info.function if info else latest.function if latest else "?"
    _print(f"function: {function}", "  ")
    if info is not None:
        if info.args is None or info.kwargs is None:
            _print(f"args: (not shown: the job is {info.format}, not accepted here)", "  ")
        else:
            shown = [*map(repr, info.args), *(f"{k}={v!r}" for k, v in info.kwargs.items())]
            _print(f"args: {clip(', '.join(shown)) if shown else '(none)'}", "  ")
    elif readable and latest is not None and latest.outcome != "success":
        _print("args: (not shown once a job has ended; kept for job.retry() with its result)", "  ")
    elif readable:
        _print("args: (not kept once a job has finished)", "  ")
    enqueued = info.enqueue_time if info else latest.enqueue_time if latest else None
    _print(f"enqueued: {when(enqueued)}", "  ")
    if info is not None and info.defer_until is not None:
        _print(f"deferred until: {when(info.defer_until)}", "  ")
    if info is not None and info.expires is not None:
        _print(f"expires: {when(info.expires)}", "  ")
    tries = info.job_try if info else latest.job_try if latest else None
    verb = "on try" if status is JobStatus.IN_PROGRESS else "next try" if info else "tries"
    if tries is not None:
        _print(f"{verb}: {tries}", "  ")
    if info is not None and info.worker:
        _print(f"worker: {info.worker} (since {when(info.start_time)})", "  ")
    if info is not None and info.headers:
        _print(f"headers: {clip(dict(info.headers))}", "  ")
    if latest is not None and status is JobStatus.COMPLETE:
        if latest.success:
            _print(f"result: {clip(latest.value)}", "  ")
        elif latest.error is not None:
            _print(f"error: {latest.error.type}: {clip(latest.error.message, 500)}", "  ")
    if history or unreadable:
        _print(f"history (latest {len(history) + len(unreadable)}, newest first):")
    for r in history:
        took = r.duration.total_seconds()
        line = f"try {r.job_try}  {when(r.finish_time)}  {_outcome(r.outcome)} in {took:.3f}s"
        line += f" on {r.worker}" if r.worker else ""
        if r.error is not None:
            line += f": {r.error.type}: {clip(r.error.message, 500)}"
        _print(line, "  ")
        if r.error is not None and r.error.traceback and not r.error.type.endswith(".Retry"):
            _print(r.error.traceback.rstrip(), "      ")
    for problem in unreadable:
        _print(f"(an execution that cannot be read: {problem})", "  ")


def _history(client: jobwire.Client, job: jobwire.Job) -> tuple[list[JobResult], list[str]]:
    """The kept executions, newest first, each decoded alone (odd ones are reported)."""
    key = client._core.keys(job.queue_name).results(job.job_id)
    try:
        entries = client._run(_one(Command(("LRANGE", key, 0, 9))))
    except REDIS_DOWN:
        raise
    except ODD_DATA as exc:
        return [], [str(exc)]
    out, unreadable = [], []
    for data in entries:
        try:
            out.append(JobResult.from_envelope(client._core.codec.decode_result(data)))
        except ODD_DATA as exc:
            unreadable.append(str(exc))
    return out, unreadable


def _one(command: Command) -> Gen[Any]:
    return (yield command)


# -------------------------------------------------------------------- failures


class Failure(NamedTuple):
    """One failed execution or one dead letter."""

    time: datetime
    queue: str
    job_id: str
    function: str
    job_try: str
    error: str


def failures_command(args: argparse.Namespace) -> int:
    """List recent failed executions and dead letters, newest first, one per line."""
    with jobwire.Client.from_url(args.url, prefix=args.prefix) as client:
        queues = [args.queue] if args.queue else client.queues() or [defaults.DEFAULT_QUEUE]
        found: list[Failure] = []
        unreadable = 0
        for queue in queues:
            try:
                failed, odd = _failed_executions(client, queue)
                found += failed
                found += _dead_letters(client, queue, args.limit)
                unreadable += odd
            except REDIS_DOWN:
                raise
            except ODD_DATA as exc:
                print(safe(f"queue {queue}: cannot be read: {exc}"), file=sys.stderr)
        found.sort(key=lambda f: f.time, reverse=True)
        for f in found[: args.limit]:
            print(
                safe(
                    f"{when(f.time)}  queue={f.queue}  job={f.job_id}  {f.function}  "
                    f"try={f.job_try}  {f.error}"
                )
            )
        if not found:
            print(safe(f"no failures kept in {', '.join(queues)}"), file=sys.stderr)
        if unreadable:
            print(f"({unreadable} kept results could not be read)", file=sys.stderr)
    return 0


def _failed_executions(client: jobwire.Client, queue: str) -> tuple[list[Failure], int]:
    core = client._core
    keys = core.keys(queue)
    pattern = _glob_escape(keys.results(""))
    out: list[Failure] = []
    unreadable = 0
    for entries in client._run(_histories(pattern)):
        for data in entries:
            try:
                r = JobResult.from_envelope(core.codec.decode_result(data))
            except ODD_DATA:
                unreadable += 1
                continue
            if r.success or (r.error and r.error.type.startswith(_DEAD_LETTERED)):
                continue  # a dead letter's result (kept briefly): its dead letter is listed
            error = f"{r.error.type}: {clip(r.error.message, 300)}" if r.error else r.outcome
            if r.outcome != "error":  # timed out, aborted, or an outcome of a newer wire
                error = f"{_outcome(r.outcome)}: {error}"
            out.append(Failure(r.finish_time, queue, r.job_id, r.function, str(r.job_try), error))
    return out, unreadable


def _histories(pattern: str) -> Gen[list[list[bytes]]]:
    """The history list of every key matching ``pattern`` (lists only; odd keys skipped)."""
    cursor: Any = 0
    found: list[bytes] = []
    while True:
        cursor, batch = yield Command(
            ("SCAN", cursor, "MATCH", pattern + "*", "COUNT", 1000, "TYPE", "list")
        )
        found.extend(batch)
        if int(cursor) == 0:
            break
    out: list[list[bytes]] = []
    for start in range(0, len(found), 500):
        chunk = found[start : start + 500]
        replies = yield Pipeline(tuple(Command(("LRANGE", k, 0, 9)) for k in chunk))
        out += [r for r in replies if isinstance(r, list)]  # a key that changed type: skipped
    return out


def _dead_letters(client: jobwire.Client, queue: str, limit: int) -> Iterator[Failure]:
    codec = client._core.codec
    for letter in client.dead_letters(queue, limit):
        function = "?"
        with contextlib.suppress(*ODD_DATA):
            function = codec.read_job_header(letter.data).function
        yield Failure(
            letter.time, queue, letter.job_id or "-", function, "-",
            f"dead letter ({letter.reason}): {clip(letter.message, 300)}",
        )  # fmt: skip


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
