"""A process-pool child: ``python -m jobwire.worker._child``.

Reads length-prefixed frames from stdin, each a cloudpickled ``(function, ctx, args, kwargs)``,
runs it, and writes back a frame with a cloudpickled ``(ok, value_or_exception, error_fields)``.
One job at a time; the parent kills the whole process to stop a job (timeout or abort).
Output printed by jobs goes to stderr: stdout carries the frames.
"""

from __future__ import annotations

import os
import struct
import sys
import traceback
from typing import Any, BinaryIO

import cloudpickle

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
    while (frame := read_frame(inp)) is not None:
        try:
            function, ctx, args, kwargs = cloudpickle.loads(frame)
            body = _reply(True, function(ctx, *args, **kwargs), None)
        except BaseException as exc:
            body = _reply(False, exc, _error_fields(exc))
        write_frame(out, body)


if __name__ == "__main__":
    main()
