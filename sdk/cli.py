"""The ``jobwire`` command line (also ``python -m jobwire``), on top of clients and worker.

::

    jobwire worker myapp.tasks.WorkerSettings [--burst] [--watch DIR] [--check] [--verbose]
    jobwire info [--url URL] [--prefix P]
    jobwire dead list|requeue|delete [ENTRY] [--queue Q] [--url URL]
    jobwire demo
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
from typing import Any

import jobwire
from jobwire import defaults
from jobwire.health import Assessment, assess, redis_time_ms
from jobwire.wire import FORMATS, WIRE_VERSION, WireError

__all__ = ["build_parser", "load_settings", "run"]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``jobwire`` command."""
    parser = argparse.ArgumentParser(
        prog="jobwire",
        description="jobwire: a Redis job queue with one wire format for every language.",
    )
    major, minor = WIRE_VERSION
    parser.add_argument(
        "--version",
        action="version",
        version=f"jobwire {jobwire.__version__} (wire {major}.{minor}; formats: "
        f"{', '.join(FORMATS)})",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    worker.add_argument("--verbose", "-v", action="store_true", help="debug logging")

    info = sub.add_parser("info", help="queues, sizes, running jobs, dead letters, workers")
    _connection_args(info)

    dead = sub.add_parser("dead", help="list, re-queue or delete dead-letter entries")
    dead.add_argument("action", choices=["list", "requeue", "delete"])
    dead.add_argument("entry", nargs="?", help="entry id (for requeue and delete)")
    dead.add_argument("--queue", help="one queue (default: every queue)")
    dead.add_argument("--limit", type=int, default=20)
    _connection_args(dead)

    sub.add_parser("demo", help="see jobwire work (starts its own Redis without REDIS_URL)")
    from jobwire.dashboard.cli import add_parser as add_dashboard

    add_dashboard(sub)
    return parser


def _connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=defaults.redis_url(),
        help=f"Redis URL (default: $REDIS_URL or {defaults.URL})",
    )
    parser.add_argument("--prefix", default="jobwire")


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


#: Exit statuses of the ``jobwire`` command (besides 0, success).
EXIT_NEGATIVE = 1  # unhealthy (--check), no such entry, nothing done
EXIT_BAD_INPUT = 2  # bad arguments or settings (argparse uses 2 as well)
EXIT_REDIS = 3  # Redis unreachable, refused the login, or refused a command


def run(argv: list[str]) -> int:
    """Parse ``argv`` and run the chosen command; return the process exit status.

    Expected failures print one line to stderr and exit with a documented status: 2 for
    bad input, 3 when Redis is unreachable or refuses; a closed pipe (``| head``) ends
    the command quietly.
    """
    try:
        return _run(argv)
    except jobwire.InvalidArgument as exc:
        print(f"jobwire: {_safe(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except jobwire.RedisError as exc:
        print(f"jobwire: {_safe(str(exc))}", file=sys.stderr)
        return EXIT_REDIS
    except (jobwire.JobwireError, WireError) as exc:  # not found, unreadable message, ...
        print(f"jobwire: {_safe(str(exc))}", file=sys.stderr)
        return EXIT_NEGATIVE
    except BrokenPipeError:
        # the reader went away (``jobwire info | head``): stop quietly, as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


def _run(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "worker":
        return _worker(args)
    if args.command == "info":
        return _info(args)
    if args.command == "dead":
        return _dead(args)
    if args.command == "dashboard":
        from jobwire.dashboard.cli import run as dashboard

        return dashboard(args)
    if args.command == "demo":
        from jobwire.worker.demo import main as demo

        return demo()
    parser.print_help()
    return 0


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _worker(args: argparse.Namespace) -> int:
    _logging(args.verbose)
    if args.watch:
        return _watch(args)
    from jobwire.worker import Worker

    settings = load_settings(args.settings)
    overrides = {"burst": True} if args.burst else {}
    worker = Worker.from_settings(settings, **overrides)
    if args.check:
        return _check(worker)
    worker.run()
    return 0


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
            print(f"unhealthy: {_safe(str(exc))}")
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
            print(_safe(f"{q.name}: worker {a.worker} {verdict}"))
            for warning in a.warnings:
                print(_safe(f"{q.name}: warning: {warning}"))
        if not healthy:
            print(_safe(f"unhealthy: no healthy worker of these settings on queue {q.name!r}"))
            status = 1
    return status


def _functions_of(a: Assessment) -> set[str]:
    names = a.record.get("functions")
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def _safe(text: str) -> str:
    """Text from Redis made safe for a terminal: control characters are escaped."""
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def _watch(args: argparse.Namespace) -> int:
    try:
        import watchfiles
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise SystemExit(
            "jobwire: --watch needs watchfiles: pip install 'jobwire[watch]'"
        ) from None
    command = [sys.executable, "-m", "jobwire", "worker", args.settings]
    command += ["--burst"] * args.burst + ["--verbose"] * args.verbose
    logging.getLogger("jobwire").info("watching %s; the worker restarts on changes", args.watch)
    watchfiles.run_process(args.watch, target=" ".join(command), target_type="command")
    return 0


def _info(args: argparse.Namespace) -> int:
    with jobwire.Client.from_url(args.url, prefix=args.prefix) as client:
        queues = client.queues()
        now = client._run(redis_time_ms())
        if not queues:
            print("no queues yet")
        for name in queues:
            try:
                _queue_info(client, name, now)
            except (jobwire.RedisUnavailable, BrokenPipeError):
                raise
            except (jobwire.JobwireError, WireError, ValueError) as exc:  # odd data: go on
                print(_safe(f"queue {name}: cannot be read: {exc}"))
    return 0


def _queue_info(client: jobwire.Client, name: str, now: int) -> None:
    core = client._core
    stats = client._run(core.queue_stats(name))
    print(
        _safe(
            f"queue {name}: {stats['queued']} queued, {stats['deferred']} deferred, "
            f"{stats['in_progress']} in progress, {stats['dead_letters']} dead "
            f"letter{'' if stats['dead_letters'] == 1 else 's'}"
        )
    )
    judged = [assess(w, raw, now) for w, raw in client._run(core.health_records(name)).items()]
    for a in sorted((a for a in judged if a.live), key=lambda a: a.worker):
        verdict = "" if a.healthy else " UNHEALTHY: " + "; ".join(a.problems)
        print(
            _safe(
                f"  worker {a.worker}: {a.count('complete')} complete, "
                f"{a.count('failed')} failed, {a.count('retried')} retried, "
                f"{a.count('ongoing')} ongoing{verdict}"
            )
        )
        for warning in a.warnings:
            print(_safe(f"  warning: {warning}"))
    stale = sum(not a.live for a in judged)
    if stale:
        print(f"  ({stale} stale worker record{'s' * (stale > 1)}: not refreshed, ignored)")


def _dead(args: argparse.Namespace) -> int:
    with jobwire.Client.from_url(args.url, prefix=args.prefix) as client:
        queues = [args.queue] if args.queue else client.queues() or [defaults.DEFAULT_QUEUE]
        if args.action == "list":
            for name in queues:
                try:
                    letters = client.dead_letters(name, args.limit)
                except (jobwire.RedisUnavailable, BrokenPipeError):
                    raise
                except (jobwire.JobwireError, WireError, ValueError) as exc:  # odd data
                    print(_safe(f"queue {name}: cannot be read: {exc}"), file=sys.stderr)
                    continue
                for letter in letters:
                    print(
                        _safe(
                            f"{letter.entry_id}  {letter.time:%Y-%m-%d %H:%M:%S}  "
                            f"queue={name}  {letter.reason:<20} job={letter.job_id or '-'}  "
                            f"{letter.message}"
                        )
                    )
            return 0
        if not args.entry or not re.fullmatch(r"\d+-\d+", args.entry):
            print(
                f"jobwire: dead {args.action} needs an entry id like 1767225600000-0 "
                "(see jobwire dead list)",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        for name in queues:  # the entry's queue: the one whose dead letters hold it
            if args.action == "requeue":
                try:
                    job = client.requeue_dead_letter(args.entry, name)
                except jobwire.JobNotFound:
                    continue
                print(
                    _safe(f"re-queued in {name} as job {job.job_id}")
                    if job
                    else "not re-queued: the job id is taken"
                )
                return 0 if job else EXIT_NEGATIVE
            if client.delete_dead_letter(args.entry, name):
                print(_safe(f"deleted from {name}"))
                return 0
        print(_safe(f"no dead letter {args.entry!r} in {', '.join(queues)}"), file=sys.stderr)
        return EXIT_NEGATIVE
