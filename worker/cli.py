"""The ``jobwire`` command line."""

from __future__ import annotations

import argparse

import jobwire
from jobwire.wire import FORMATS, WIRE_VERSION


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
    return parser


def run(argv: list[str]) -> int:
    """Parse ``argv`` and run the chosen command; return the process exit status."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0
