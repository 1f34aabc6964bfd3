"""Running one attempt at a job: from its delivery to its recorded outcome.

The decisions (run, refuse, dead-letter, hand back; retry or final) are the pure rules of
:mod:`jobwire.worker.attempt`; this module carries them out: hooks, the function on the
loop, in a thread or in a process, its timeout (counted from when it really starts, not
while it waits for a free thread or process) and aborts.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from jobwire import tracing
from jobwire.logs import trace_id
from jobwire.wire import Codec, ErrorRecord, JobHeader

from .attempt import Final, Poison, Refused, Run, Unknown, conclude, job_context, plan
from .config import WorkerConfig
from .deadlines import Deadlines, uncancel
from .executors import ProcessPool, ThreadRunner
from .metrics import JobMetrics
from .progress import ProgressWriter, current
from .recorder import Recorder
from .state import Running, Slots

__all__ = ["Attempts", "call_hook"]

logger = logging.getLogger("jobwire.worker")
#: Seconds during which a repeated failure (same function, error type and message) is
#: logged without its traceback again.
_TRACEBACK_WINDOW = 10.0
_PROCESS_CTX_KEYS = ("job_id", "job_try", "enqueue_time", "queue_name", "function", "headers")


async def call_hook(hooks: dict[str, Any], name: str, ctx: dict[str, Any]) -> None:
    """Run a lifecycle hook; a failing one is logged (``on_startup``'s failure is raised)."""
    hook = hooks.get(name)
    if hook is None:
        return
    try:
        result = hook(ctx)
        if inspect.isawaitable(result):
            await result
    except Exception:
        if name == "on_startup":
            raise
        logger.exception("%s hook failed", name)


class Attempts:
    """Carries out attempts for one worker."""

    def __init__(
        self,
        *,
        config: WorkerConfig,
        codec: Codec,
        ctx: dict[str, Any],
        recorder: Recorder,
        slots: Slots,
        threads: ThreadRunner,
        processes: ProcessPool | None,
        now_ms: Callable[[], int],
        progress: ProgressWriter | None = None,
        metrics: JobMetrics | None = None,
    ) -> None:
        self.config = config
        self.progress = progress
        self.metrics = metrics if metrics is not None else JobMetrics()
        self.codec = codec
        self.ctx = ctx
        self.recorder = recorder
        self.slots = slots
        self.threads = threads
        self.processes = processes
        self.now_ms = now_ms
        self.hooks = hooks = config.hooks
        # per job, a hook that is not set costs a dict lookup, not a coroutine
        job_hooks = ("on_job_start", "on_job_end", "after_job_end")
        self._job_hooks = {name for name in job_hooks if hooks.get(name)}
        self._tracebacks: dict[tuple[str, str, str, int], float] = {}
        self._records = _LineRecords()
        self._deadlines = Deadlines()

    async def run(self, r: Running) -> None:
        """The task of one delivery: decide, run, record; never raises but for shutdown."""
        d = r.delivery
        try:
            if d.problem is not None:
                await self.recorder.dead_letter(r, d.problem, "malformed queue entry", None)
                return
            started = self.now_ms()
            config = self.config
            decision = plan(
                self.codec, d.data, d.job_id, d.tries, config.registry, config.defaults, started
            )
            if isinstance(decision, Poison):
                # the delivery still names the job: a client waiting for it learns why
                header = decision.header or JobHeader(
                    id=d.job_id, function="unknown", queue=d.queue_name, enqueued_ms=0
                )
                await self.recorder.dead_letter(r, decision.reason, decision.message, header)
            elif isinstance(decision, Unknown):
                await self.recorder.hand_back(r, decision.job, decision.message)
            elif isinstance(decision, Refused):
                self.slots.settle(r)
                final = Final("error", None, decision.error, None, None)
                await self.recorder.finish(r, decision.run, final, started)
            else:
                await self._execute(r, decision, started)
        except asyncio.CancelledError:
            raise  # shutdown: the function was stopped where it ran; the caller re-queues
        except Exception as exc:
            await self._internal_error(r, exc)
        finally:
            self.slots.remove(r)

    async def _internal_error(self, r: Running, exc: Exception) -> None:
        """Jobwire itself failed on this job: dead-letter it at once, never loop on it."""
        logger.error("internal error while handling job %r", r.delivery.job_id, exc_info=exc)
        message = f"the worker failed on this job: {type(exc).__name__}: {exc}"[:1000]
        try:
            await self.recorder.dead_letter(r, "internal_error", message, None)
        except Exception:
            logger.exception(
                "job %r could not be dead-lettered either; its lease will expire",
                r.delivery.job_id,
            )

    async def _execute(self, r: Running, run: Run, started: int) -> None:
        r.function = run.function.name
        reporter = None
        if self.progress is not None:  # ctx["progress"], and progress() in this job's task
            reporter = self.progress.reporter(r, run.function.name, run.job_try, self.now_ms)
            current.set(reporter)
        ctx = job_context(self.ctx, run, r.abort_event, reporter)
        hooks = self._job_hooks
        if "on_job_start" in hooks:
            await call_hook(self.hooks, "on_job_start", ctx)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "→ %s %s(%s) try=%d", run.job.id, run.job.function, _args(run), run.job_try,
                extra={"job": {**_job_fields(run), "outcome": "started"}},
            )  # fmt: skip
        outcome, value, exc, record = await self._traced(r, run, ctx)
        final = conclude(run, outcome, value, exc, record, self.config.retry_backoff)
        self.metrics.observe(
            run.job.queue, run.function.name,
            "retried" if final.retry_in is not None else final.outcome,
            (self.now_ms() - started) / 1000,
        )  # fmt: skip
        ctx.update(
            outcome="retry" if final.retry_in is not None else final.outcome,
            result=value if exc is None else (final.exception or exc),
            success=outcome == "success",
        )
        if "on_job_end" in hooks:
            await call_hook(self.hooks, "on_job_end", ctx)
        self.slots.settle(r)
        if final.retry_in is not None:
            await self.recorder.retry(r, run, final, started)
        else:
            await self.recorder.finish(r, run, final, started)
        self._log_outcome(run, final, ctx["outcome"], started)
        if "after_job_end" in hooks:
            await call_hook(self.hooks, "after_job_end", ctx)

    def _log_outcome(self, run: Run, final: Final, outcome: str, started: int) -> None:
        """Log one line per job, with the error and its traceback when it failed.

        INFO when it succeeded, WARNING when it failed and will be retried, ERROR when it
        failed for good.
        """
        if outcome == "success":
            level = logging.INFO
        elif final.retry_in is not None:
            level = logging.WARNING
        else:
            level = logging.ERROR
        if not logger.isEnabledFor(level):
            return  # formatted only when shown
        duration = (self.now_ms() - started) / 1000
        line = "%s %s(%s) try=%d %s (ran %.3fs)"
        args: list[Any] = [run.job.id, run.job.function, _args(run), run.job_try, outcome]
        args.append(duration)
        fields = {**_job_fields(run), "outcome": outcome, "duration": duration}
        error = final.error
        if outcome != "success" and error is not None:
            line += ": %s: %s"
            args += [error.type, error.message]
            fields.update(error_type=error.type, error_message=error.message)
            if final.retry_in is not None:
                line += " (next try in %.1fs)"
                args.append(final.retry_in)
                fields["retry_in"] = final.retry_in
            if error.traceback and not error.type.endswith(".Retry"):  # asked for: no trace
                fields["traceback"] = error.traceback.rstrip()
                if self._traceback_is_new(run.job.function, error, level):
                    line += "\n%s"
                    args.append(fields["traceback"])
                else:  # a flood of one failure: every job has its line, the trace once
                    line += " (traceback as logged above, within %.0fs)"
                    args.append(_TRACEBACK_WINDOW)
        logger.handle(self._records.make(level, line, tuple(args), fields))

    def _traceback_is_new(self, function: str, error: ErrorRecord, level: int) -> bool:
        """False when this failure logged its traceback lately.

        The same failure: same function, error type, message and level (retried or final).
        """
        now = time.monotonic()
        key = (function, error.type, error.message[:200], level)
        last = self._tracebacks.get(key)
        if last is not None and now - last < _TRACEBACK_WINDOW:
            return False
        if len(self._tracebacks) > 1000:
            self._tracebacks.clear()
        self._tracebacks[key] = now
        return True

    async def _traced(
        self, r: Running, run: Run, ctx: dict[str, Any]
    ) -> tuple[str, Any, BaseException | None, ErrorRecord | None]:
        """Run the function in the attempt's consumer span (when tracing is on)."""
        job = run.job
        span = tracing.process(
            job.headers, queue=job.queue, job_id=job.id, function=job.function, job_try=run.job_try
        )
        if not span:  # tracing is off
            return await self._run_function(r, run, ctx)
        with span:
            ended = await self._run_function(r, run, ctx)
            outcome, _, exc, record = ended
            span.ended(outcome, exc, record.type if record is not None else None)
            return ended

    async def _run_function(
        self, r: Running, run: Run, ctx: dict[str, Any]
    ) -> tuple[str, Any, BaseException | None, ErrorRecord | None]:
        """Run the job's function in this task: (outcome, value, exception, error record).

        A timeout or an abort cancels the function where it runs (loop: the coroutine;
        thread: the wait, abandoning the thread; process: the child, which is killed). A
        cancellation that is neither (worker shutdown) propagates.
        """
        r.executing = True
        deadline = self._deadlines.deadline(run.timeout)
        try:
            with deadline:
                value = await self._call(run, ctx, deadline.arm)
            return "success", value, None, None
        except asyncio.CancelledError:
            if not r.aborted:
                raise
            uncancel()
            return "aborted", None, None, ErrorRecord("jobwire.JobAborted", "aborted while running")
        except BaseException as exc:
            if deadline.expired():
                message = f"job exceeded its timeout of {run.timeout}s"
                return "timeout", None, None, ErrorRecord("jobwire.JobTimedOut", message)
            if r.aborted:
                return "aborted", None, None, ErrorRecord("jobwire.JobAborted", "aborted")
            if not isinstance(exc, Exception):
                raise
            return "error", None, exc, None
        finally:
            r.executing = False

    async def _call(self, run: Run, ctx: dict[str, Any], started: Callable[[], None]) -> Any:
        fn, job = run.function.fn, run.job
        executor = run.function.executor
        if executor == "loop":
            started()
            return await fn(ctx, *job.args, **job.kwargs)
        if executor == "thread":
            job_vars = contextvars.copy_context()  # the thread sees progress() as the task does
            return await self.threads.run(
                lambda: job_vars.run(fn, ctx, *job.args, **job.kwargs), ctx["aborted"],
                run.function.name, started,
            )  # fmt: skip
        assert self.processes is not None
        small = {k: ctx[k] for k in _PROCESS_CTX_KEYS}
        return await self.processes.run(
            fn, small, job.args, job.kwargs, started, ctx.get("progress")
        )


_LOG_LINE = Attempts._log_outcome.__code__.co_firstlineno


class _LineRecords:
    """The records of the per-job lines, each a copy of a template made once.

    ``Logger.makeRecord`` works out the caller's path, thread and process for each record;
    for a line per job that was a good part of its cost. Those are the same for every line
    of one level from one thread and process, so they are looked up once; the time, message
    and fields are each line's own. An application's own record factory makes every record.
    """

    __slots__ = ("_templates",)

    def __init__(self) -> None:
        self._templates: dict[tuple[int, int, int], dict[str, Any]] = {}

    def make(
        self, level: int, line: str, args: tuple[Any, ...], fields: dict[str, Any]
    ) -> logging.LogRecord:
        if logging.getLogRecordFactory() is not logging.LogRecord:
            return logger.makeRecord(
                logger.name, level, __file__, _LOG_LINE, line, args, None, "_log_outcome",
                {"job": fields},
            )  # fmt: skip
        key = (level, threading.get_ident(), os.getpid())
        template = self._templates.get(key)
        if template is None:
            made = logger.makeRecord(
                logger.name, level, __file__, _LOG_LINE, "", (), None, "_log_outcome"
            )
            template = self._templates[key] = dict(vars(made))
        record = logging.LogRecord.__new__(logging.LogRecord)
        values = vars(record)
        values.update(template)
        now = time.time()
        values.update(
            msg=line, args=args, job=fields, created=now,
            msecs=int((now - int(now)) * 1000) + 0.0,
            relativeCreated=template["relativeCreated"] + (now - template["created"]) * 1000,
        )  # fmt: skip
        if "taskName" in template:  # Python 3.12+: the task that logs
            task = asyncio.current_task() if getattr(logging, "logAsyncioTasks", False) else None
            values["taskName"] = task.get_name() if task is not None else None
        return record


def _job_fields(run: Run) -> dict[str, Any]:
    """What a job's log lines carry for structured formatters (``jobwire.logs``)."""
    job = run.job
    return {
        "job_id": job.id, "function": job.function, "queue": job.queue, "try": run.job_try,
        "trace_id": trace_id(job.headers) if job.headers else None,
    }  # fmt: skip


def _args(run: Run, limit: int = 80) -> str:
    job = run.job
    if not job.args and not job.kwargs:
        return ""
    text = ", ".join([*map(repr, job.args), *(f"{k}={v!r}" for k, v in job.kwargs.items())])
    return text if len(text) <= limit else text[: limit - 1] + "…"
