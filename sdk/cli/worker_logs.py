"""The ``jobwire worker`` command's log lines: to stderr, as text or JSON, a turn at a time.

A worker logs a line per job. Those lines are formatted as they are logged and written out
at the end of the event loop's turn, together: one write for the jobs that ended in that
turn, where one write per line was a good part of a no-op job's cost. A line logged from
another thread (a job in the thread pool), or while no loop runs, is written at once, after
any lines still waiting, so lines keep their order. The worker logs a job's line after its
outcome is stored in Redis: a worker killed mid-turn can lose the lines of that turn's jobs,
never a job.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

from jobwire.logs import JsonFormatter

__all__ = ["configure_logging"]


class _UtcSecondsFormatter(logging.Formatter):
    """Lines ``HH:MM:SSZ LEVEL   logger[ process]: message``, stamped in UTC.

    The stamp is formatted once per second, and a line without a traceback is joined
    directly: the same text as the format string gives.
    """

    _cache: tuple[int, str] = (-1, "")  # one tuple: threads read a matching pair

    def __init__(self, process: str = "") -> None:
        super().__init__(f"%(asctime)sZ %(levelname)-7s %(name)s{process}: %(message)s")
        self._process = process

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second, stamp = self._cache
        if int(record.created) != second:
            second = int(record.created)
            stamp = time.strftime("%H:%M:%S", time.gmtime(second))
            self._cache = (second, stamp)
        return stamp

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text or record.stack_info:
            return super().format(record)
        record.message = message = record.getMessage()
        record.asctime = stamp = self.formatTime(record)
        return f"{stamp}Z {record.levelname:<7} {record.name}{self._process}: {message}"


class _TurnHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, written once per turn of the event loop (see the module's documentation)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self._lines: list[str] = []
        self._turn: asyncio.AbstractEventLoop | None = None  # the loop whose turn they wait

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # another thread, or no loop
            loop = None
        self._lines.append(line)
        if loop is None or (self._turn is not None and self._turn is not loop):
            self._write()  # at once, after the lines still waiting
        elif self._turn is None:
            self._turn = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        self.acquire()
        try:
            self._write()
        finally:
            self.release()
        super().flush()

    def _write(self) -> None:  # (under the lock)
        self._turn = None
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            self.stream.write("\n".join(lines) + "\n")
        except Exception:  # a closed or broken stderr: as logging does, say so and go on
            self.handleError(logging.makeLogRecord({"msg": lines[0]}))


def configure_logging(verbose: bool, log_format: str = "text") -> None:
    """Log to stderr, as text lines or as JSON lines (:class:`jobwire.logs.JsonFormatter`)."""
    level = logging.DEBUG if verbose else logging.INFO
    handler = _TurnHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        # UTC, marked so: one clock for every process (Django's TIME_ZONE changes local time)
        # one of --processes N: its lines name the process (the supervisor's own do not)
        index = os.environ.get("JOBWIRE_PROCESS_INDEX")
        process = f" [process {index}]" if index is not None and index.isdigit() else ""
        handler.setFormatter(_UtcSecondsFormatter(process))
    logging.basicConfig(level=level, handlers=[handler])
