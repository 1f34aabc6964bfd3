"""``jobwire worker``: run a worker (``--burst``, ``--watch``), or check one (``--check``)."""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import shlex
import sys
from typing import Any

import jobwire
from jobwire.health import Assessment, assess, redis_time_ms

from .output import positive_int, safe
from .worker_logs import configure_logging

__all__ = ["add_worker_parser", "load_settings", "worker_command"]


def add_worker_parser(sub: Any) -> None:
    """The ``worker`` subcommand's arguments."""
    worker = sub.add_parser("worker", help="run a worker")
    worker.add_argument("settings", help="dotted path of a WorkerSettings class (or object)")
    worker.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    worker.add_argument(
        "--watch", metavar="DIR", help="restart the worker when code in DIR changes"
    )
    worker.add_argument(
        "--check",
        action="store_true",
        help="exit 0 if a worker of these settings is healthy, else 1",
    )
    worker.add_argument("--url", help="Redis URL, in place of the settings' redis_settings")
    worker.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="Q",
        help="a queue to serve, in place of the settings' queue_name/queue_names (repeatable)",
    )
    worker.add_argument("--max-jobs", type=int, metavar="N", help="jobs run at once")
    worker.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve Prometheus metrics on port N (/metrics; with --processes, N, N+1, ...)",
    )
    worker.add_argument(
        "--processes",
        type=positive_int,
        default=1,
        metavar="N",
        help="run N worker processes under a supervisor that restarts them (default 1)",
    )
    worker.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="log lines as text (default) or as JSON objects, one per line",
    )
    worker.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def load_settings(path: str) -> Any:
    """Import ``package.module.Name`` and return ``Name``."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise jobwire.InvalidArgument(
            f"{path!r} is not a dotted path like myapp.tasks.WorkerSettings"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like arq: the current directory is importable
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise jobwire.InvalidArgument(f"cannot import {module_name!r} for {path!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise jobwire.InvalidArgument(f"module {module_name!r} has no {attr!r}") from None


def overrides_of(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the command line overrides."""
    overrides: dict[str, Any] = {}
    if args.burst:
        overrides["burst"] = True
    if args.url:
        overrides["redis_settings"] = args.url
    if args.queues:
        overrides.update(queue_name=args.queues[0], queue_names=tuple(args.queues))
    if args.max_jobs is not None:
        overrides["max_jobs"] = args.max_jobs
    return overrides


def worker_command(args: argparse.Namespace) -> int:
    """Run (or check) the worker of the settings ``args.settings``."""
    configure_logging(args.verbose, args.log_format)
    if args.watch:
        return _watch(args)
    from jobwire.worker import Worker

    settings = load_settings(args.settings)
    overrides = overrides_of(args)
    index = os.environ.get("JOBWIRE_PROCESS_INDEX")
    if index is not None and getattr(settings, "name", None):
        overrides["name"] = f"{settings.name}-{index}"  # one health record per process
    if args.metrics_port is not None:  # one port per process
        overrides["metrics_port"] = args.metrics_port + int(index or 0)
    worker = Worker.from_settings(settings, **overrides)  # bad settings: refused here, once
    if args.check:
        return _check(worker)
    if args.processes > 1:
        from jobwire.worker.processes import ProcessSupervisor

        command = _child_command(args, processes=False)
        return ProcessSupervisor(command, args.processes, burst=args.burst).run()
    _tune_gc()
    worker.run()
    return 0


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off a worker process's hot path.

    What exists now (modules, settings, the worker) lives as long as the process: frozen,
    no collection walks it again (a full one took 20-30 ms mid-drain, measured). Young
    collections, which came about every 20 jobs, come a tenth as often (every 7,000 net
    allocations instead of 700): what a job allocates is mostly freed by reference counting.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(7000, middle, old)


def _child_command(args: argparse.Namespace, *, processes: bool = True) -> list[str]:
    """The ``jobwire worker`` command of a child process, with this command's flags."""
    command = [sys.executable, "-m", "jobwire", "worker", args.settings]
    command += ["--burst"] * args.burst + ["--verbose"] * args.verbose
    command += ["--log-format", args.log_format]
    if args.url:
        command += ["--url", args.url]
    for queue in args.queues or ():
        command += ["--queue", queue]
    if args.max_jobs is not None:
        command += ["--max-jobs", str(args.max_jobs)]
    if args.metrics_port is not None:
        command += ["--metrics-port", str(args.metrics_port)]
    if processes and args.processes > 1:
        command += ["--processes", str(args.processes)]
    return command


def _check(worker: Any) -> int:
    """Exit 0 only if, on every queue of these settings, a worker is live and healthy.

    Live: its record was refreshed within two intervals of Redis's clock. Healthy: every
    loop of it runs or legitimately waits, and none went longer without progress than it
    promised (see ``jobwire.health``).
    """
    with jobwire.Client(settings=worker.redis_settings, prefix=worker.core.prefix) as client:
        try:
            now = client._run(redis_time_ms())
            found = [client._run(client._core.health_records(q.name)) for q in worker.queues]
        except jobwire.JobwireError as exc:
            print(f"unhealthy: {safe(str(exc))}")
            return 1
    status = 0
    for q, records in zip(worker.queues, found, strict=True):
        judged = [assess(name, raw, now) for name, raw in sorted(records.items())]
        needed = set(worker.functions)
        # a worker of these settings: one that can run their functions (not any worker of
        # the queue, which may run other code)
        healthy = [a for a in judged if a.healthy and needed <= _functions_of(a)]
        for a in judged:
            verdict = "healthy" if a.healthy else "UNHEALTHY: " + "; ".join(a.problems)
            missing = needed - _functions_of(a)
            if missing:
                verdict += f" (not of these settings: lacks {', '.join(sorted(missing)[:5])})"
            print(safe(f"{q.name}: worker {a.worker} {verdict}"))
            for warning in a.warnings:
                print(safe(f"{q.name}: warning: {warning}"))
        if not healthy:
            print(safe(f"unhealthy: no healthy worker of these settings on queue {q.name!r}"))
            status = 1
    return status


def _functions_of(a: Assessment) -> set[str]:
    names = a.record.get("functions")
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def _watch(args: argparse.Namespace) -> int:
    try:
        import watchfiles
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise SystemExit(
            "jobwire: --watch needs watchfiles: pip install 'jobwire[watch]'"
        ) from None
    command = _child_command(args)
    logging.getLogger("jobwire").info("watching %s; the worker restarts on changes", args.watch)
    watchfiles.run_process(args.watch, target=shlex.join(command), target_type="command")
    return 0
