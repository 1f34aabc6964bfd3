"""Eager execution for the in-memory twin: jobs run inline by the worker's own rules.

Each execution goes through :mod:`jobwire.worker.attempt` (function lookup, tries, expiry,
``Retry``, result encoding), so a job behaves in a unit test as under a real worker; the
twin's state setters record what happened.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from jobwire.events import check_progress
from jobwire.producer import now_ms
from jobwire.protocol import Gen
from jobwire.worker.attempt import Defaults, Poison, Refused, Unknown, conclude, job_context, plan
from jobwire.worker.progress import current

from ._store import CLIENT_KEEP, WORKER_NAME, Call

if TYPE_CHECKING:
    from ._engine import MemoryProducer

__all__ = ["run_job", "run_jobs"]


def run_jobs(core: MemoryProducer, queue_name: str | None, include_deferred: bool) -> Gen[int]:
    """Run ready jobs (and deferred ones, if asked) until none is left.

    Of one queue, or with None of every queue, the default one first, again until a
    round runs nothing (a job may enqueue to a queue already drained).
    """
    if queue_name is None:
        total = 0
        while True:
            ran = 0
            for name in core.queue_names():
                ran += yield from run_jobs(core, name, include_deferred)
            if not ran:
                return total
            total += ran
    ran = 0
    while not core.paused(queue_name):  # a paused queue runs nothing, as with a worker
        with core.store._cond:
            waiting, deferred = core._waiting(queue_name)
            if include_deferred and not waiting:
                waiting = deferred
            if not waiting:
                return ran
            job_id = waiting[0].header.id
        yield from _execute(core, job_id, queue_name)
        ran += 1
    return ran


def run_job(core: MemoryProducer, job_id: str, queue_name: str | None) -> Gen[None]:
    """Run one job now, again and again while it asks for retries (ignores deferral)."""
    while True:
        with core.store._cond:
            job = core._refreshed(queue_name)[1].jobs.get(job_id)
            if job is None or job.state == "active":
                return
        yield from _execute(core, job_id, queue_name)


def _execute(core: MemoryProducer, job_id: str, queue_name: str | None) -> Gen[None]:
    """One execution, with the worker's rules (function lookup, tries, expiry, Retry)."""
    core.start(job_id, queue_name, WORKER_NAME)
    data, tries = core.raw(job_id, queue_name)
    # no backoff here: a Retry without a delay runs again at once
    defaults = Defaults(max_tries=core.max_tries, keep_result=CLIENT_KEEP, retry_backoff=0.0)
    decision = plan(core.codec, data, job_id, tries, core.functions, defaults, now_ms())
    if isinstance(decision, (Poison, Unknown)):
        # (no other worker here to hand an unknown function's job to)
        reason = decision.reason if isinstance(decision, Poison) else "unknown_function"
        core.dead_letter(job_id, queue_name, reason, decision.message)
        return
    if isinstance(decision, Refused):
        core.finish(job_id, queue_name, "error", error=decision.error)
        return
    run = decision

    def progress(value: float, message: str = "") -> None:
        core.record_progress(job_id, queue_name, *check_progress(value, message))

    ctx = job_context(core.ctx, run, threading.Event(), progress)
    token = current.set(progress)  # jobwire.worker.progress() inside the job
    try:
        value = yield Call(run.function.fn, (ctx, *run.job.args), run.job.kwargs)
    except Exception as exc:
        final = conclude(run, "error", exc=exc, backoff=0.0)
        core.finish(
            job_id, queue_name, "error", error=final.error, exc=final.exception,
            retry_in=final.retry_in, keep=run.keep,
        )  # fmt: skip
    else:
        core.finish(job_id, queue_name, "success", value=value, keep=run.keep)
    finally:
        current.reset(token)
