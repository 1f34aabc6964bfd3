"""A process-pool child: ``python -m jobwire.worker._child``.

Reads length-prefixed frames from stdin, each a cloudpickled ``(function, ctx, args, kwargs)``,
runs it, and writes back a frame ``R`` + a cloudpickled ``(ok, value_or_exception,
error_fields)``; before it, the job's progress reports as frames ``P`` + JSON
``{"value": ..., "message": ...}`` (throttled: see ``progress.ChildProgress``).
One job at a time; the parent kills the whole process to stop a job (timeout or abort).
Output printed by jobs goes to stderr: stdout carries the frames.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
import traceback
from typing import Any, BinaryIO

import cloudpickle

from .progress import ChildProgress, current

_HEADER = struct.Struct(">I")


def read_frame(stream: BinaryIO) -> bytes | None:
    """Read one frame, or None at end of input."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    return stream.read(size)


def write_frame(stream: BinaryIO, body: bytes) -> None:
    """Write one frame and flush it."""
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def _error_fields(exc: BaseException) -> tuple[str, str, str]:
    tp = type(exc)
    tb = "".join(traceback.format_exception(tp, exc, exc.__traceback__))
    return f"{tp.__module__}.{tp.__qualname__}", str(exc), tb


def _reply(ok: bool, value: Any, error: tuple[str, str, str] | None) -> bytes:
    try:
        return bytes(cloudpickle.dumps((ok, value, error)))
    except Exception as exc:  # an unpicklable result or exception: describe it instead
        if ok:
            error = _error_fields(exc)
        return bytes(cloudpickle.dumps((False, None, error)))


def main() -> None:
    """Serve jobs until stdin closes."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a job's print() must not corrupt the frames
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    lock = threading.Lock()  # progress frames may come from a timer thread
    while (frame := read_frame(inp)) is not None:
        reporter = ChildProgress(lambda body: write_frame(out, body), lock)
        token = current.set(reporter)
        try:
            function, ctx, args, kwargs = cloudpickle.loads(frame)
            ctx["progress"] = reporter
            body = _reply(True, function(ctx, *args, **kwargs), None)
        except BaseException as exc:
            body = _reply(False, exc, _error_fields(exc))
        finally:
            current.reset(token)
        with lock:
            reporter.close()
            write_frame(out, b"R" + body)


if __name__ == "__main__":
    main()
