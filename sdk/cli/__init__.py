"""The ``jobwire`` command line (also ``python -m jobwire``), on top of clients and worker.

::

    jobwire worker myapp.tasks.WorkerSettings [--burst] [--watch DIR] [--check] [--verbose]
                   [--url URL] [--queue Q ...] [--max-jobs N] [--log-format text|json]
    jobwire info [--json] [--watch [SECONDS]] [--url URL] [--prefix P]
    jobwire job ID [--queue Q] [--url URL] [--prefix P]
    jobwire failures [--queue Q] [--limit N] [--url URL] [--prefix P]
    jobwire dead list|requeue|delete [ENTRY] [--queue Q] [--limit N] [--url URL]
    jobwire dashboard [--url URL] [--host H] [--port P] [--read-only] [--token T]
    jobwire demo

Each command lives in a module of its own: :mod:`.worker` (``worker``), :mod:`.info`
(``info``, ``dead``), :mod:`.jobs` (``job``, ``failures``); :mod:`.output` has the exit
statuses and the escaping of text from Redis.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

import jobwire
from jobwire import defaults
from jobwire.wire import FORMATS, WIRE_VERSION, WireError

from .output import EXIT_BAD_INPUT, EXIT_NEGATIVE, EXIT_REDIS, positive_int
from .output import safe as _safe
from .worker import add_worker_parser, load_settings, worker_command

__all__ = ["EXIT_BAD_INPUT", "EXIT_NEGATIVE", "EXIT_REDIS", "build_parser", "load_settings", "run"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``jobwire`` command."""
    parser = _Parser(
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
    add_worker_parser(sub)

    info = sub.add_parser("info", help="queues, sizes, running jobs, dead letters, workers")
    info.add_argument("--json", action="store_true", help="one JSON object (per refresh)")
    info.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=_seconds,
        metavar="SECONDS",
        help="show it again every SECONDS (default 2) until Ctrl-C",
    )
    _connection_args(info)

    job = sub.add_parser("job", help="one job: status, outcome, arguments, history")
    job.add_argument("job_id", metavar="ID")
    job.add_argument("--queue", help="its queue (default: the default queue, then every queue)")
    _connection_args(job)

    failures = sub.add_parser("failures", help="recent failed executions and dead letters")
    failures.add_argument("--queue", help="one queue (default: every queue)")
    failures.add_argument("--limit", type=positive_int, default=20, metavar="N")
    _connection_args(failures)

    dead = sub.add_parser("dead", help="list, re-queue or delete dead-letter entries")
    dead.add_argument("action", choices=["list", "requeue", "delete"])
    dead.add_argument("entry", nargs="?", help="entry id (for requeue and delete)")
    dead.add_argument("--queue", help="one queue (default: every queue)")
    dead.add_argument("--limit", type=positive_int, default=20, metavar="N")
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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"a number of seconds above 0, not {text!r}")
    return value


def run(argv: list[str]) -> int:
    """Parse ``argv`` and run the chosen command; return the process exit status.

    Expected failures print one line to stderr and exit with a documented status: 1 when
    nothing was found or done, 2 for bad input, 3 when Redis is unreachable or refuses; a
    closed pipe (``| head``) ends the command quietly.
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


#: Each command's module and function, imported when it runs (a worker's start-up, or a
#: quick ``jobwire info``, does not wait for the others' imports).
_COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "info_command"),
    "job": ("jobs", "job_command"),
    "failures": ("jobs", "failures_command"),
    "dead": ("info", "dead_command"),
}


def _run(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "worker":
        return worker_command(args)
    where = _COMMANDS.get(args.command)
    if where is not None:
        module = importlib.import_module(f"{__name__}.{where[0]}")
        return int(getattr(module, where[1])(args))
    if args.command == "dashboard":
        from jobwire.dashboard.cli import run as dashboard

        return dashboard(args)
    if args.command == "demo":
        from jobwire.worker.demo import main as demo

        return demo()
    parser.print_help()
    return 0
