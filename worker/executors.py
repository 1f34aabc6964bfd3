"""Where ``def`` jobs run: a thread runner and a process pool, both stoppable per job.

Both are driven from the event loop and are cancellable: cancelling ``run()`` is how the
worker applies a timeout or an abort.

* Threads cannot be killed. A cancelled thread job is *abandoned*: its slot is released at
  once (so a new job can start), the cooperative ``abort`` event in its context is set, and a
  warning is logged; the thread ends whenever the function returns.
* Processes can. A cancelled process job kills its child process, which is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import struct
import sys
import threading
from collections.abc import Callable
from typing import Any

import cloudpickle

from jobwire.wire import ErrorRecord

from .progress import parse_child_frame

__all__ = ["ProcessJobError", "ProcessPool", "ThreadRunner"]

logger = logging.getLogger("jobwire.worker")
_HEADER = struct.Struct(">I")


class ThreadRunner:
    """Runs blocking functions in threads, ``size`` at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._slots: asyncio.Semaphore | None = None
        self.abandoned = 0

    async def run(
        self,
        call: Callable[[], Any],
        abort: threading.Event,
        name: str,
        started: Callable[[], None] = lambda: None,
    ) -> Any:
        """Run ``call()`` in a thread; if cancelled, abandon the thread (see module doc).

        ``started`` is called when a thread is free and the call begins.
        """
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        async with self._slots:
            started()
            loop = asyncio.get_running_loop()
            done: asyncio.Future[Any] = loop.create_future()

            def settle(value: Any, error: BaseException | None) -> None:
                if done.cancelled():
                    return
                if error is None:
                    done.set_result(value)
                else:
                    done.set_exception(error)

            # the job sees the context of its attempt (its trace span, the caller's
            # context variables), as with asyncio.to_thread
            context = contextvars.copy_context()

            def target() -> None:
                try:
                    value = context.run(call)
                except BaseException as exc:
                    loop.call_soon_threadsafe(settle, None, exc)
                else:
                    loop.call_soon_threadsafe(settle, value, None)

            thread = threading.Thread(target=target, name=f"jobwire:{name}", daemon=True)
            thread.start()
            try:
                return await done
            except asyncio.CancelledError:
                abort.set()
                if thread.is_alive():
                    self.abandoned += 1
                    logger.warning(
                        "thread running %s abandoned (it cannot be killed); its slot is "
                        "free again and its context's abort flag is set",
                        name,
                    )
                raise


class ProcessJobError(Exception):
    """A process job raised an exception that could not be sent back as itself."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(f"{record.type}: {record.message}")
        self.record = record
        self.jobwire_record = record  # what the worker records (attempt.error_record)


class _Child:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def call(
        self, payload: bytes, on_progress: Callable[[float, str], None] | None = None
    ) -> bytes:
        """Send a job, hand its progress frames to ``on_progress``, return its result frame."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(_HEADER.pack(len(payload)) + payload)
        await self.proc.stdin.drain()
        while True:
            (size,) = _HEADER.unpack(await self.proc.stdout.readexactly(_HEADER.size))
            body = await self.proc.stdout.readexactly(size)
            if body[:1] != b"P":
                return body[1:]
            report = parse_child_frame(body[1:])
            if report is not None and on_progress is not None:
                on_progress(*report)

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


class ProcessPool:
    """``size`` child interpreters running one job each; a stopped job's child is replaced."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: asyncio.Queue[_Child] | None = None
        self._children: set[_Child] = set()
        self._starting: asyncio.Task[None] | None = None
        self.replaced = 0

    def start(self) -> asyncio.Task[None]:
        """Start the children in the background (once); await the task to wait for them."""
        if self._starting is None:
            self._idle = asyncio.Queue()
            self._starting = asyncio.ensure_future(self._start())
        return self._starting

    async def _start(self) -> None:
        assert self._idle is not None
        for child in await asyncio.gather(*(self._spawn() for _ in range(self.size))):
            self._idle.put_nowait(child)

    async def _spawn(self) -> _Child:
        # the child imports job functions by reference: give it this process's import path
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "jobwire.worker._child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        child = _Child(proc)
        self._children.add(child)
        return child

    async def run(
        self,
        function: Callable[..., Any],
        ctx: dict[str, Any],
        args: Any,
        kwargs: Any,
        started: Callable[[], None] = lambda: None,
        on_progress: Callable[[float, str], None] | None = None,
    ) -> Any:
        """Run ``function(ctx, *args, **kwargs)`` in a child; if cancelled, kill that child.

        ``started`` is called when a child is free and takes the job (a job's timeout
        counts from then, not while it waits for a process); ``on_progress`` with each
        progress report the job sends.
        """
        await self.start()
        assert self._idle is not None
        payload = cloudpickle.dumps((function, ctx, tuple(args), dict(kwargs)))
        child = await self._idle.get()
        started()
        healthy = False
        try:
            reply = await child.call(payload, on_progress)
            healthy = True
        except asyncio.CancelledError:
            raise
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise RuntimeError(f"process pool child died while running a job: {exc}") from exc
        finally:
            if healthy:
                self._idle.put_nowait(child)
            else:
                child.kill()
                self._children.discard(child)
                self.replaced += 1
                asyncio.get_running_loop().create_task(self._replace())
        ok, value, error = cloudpickle.loads(reply)
        if ok:
            return value
        etype, message, tb = error
        record = ErrorRecord(etype, message, tb)  # with the child's traceback
        if isinstance(value, BaseException):
            # exceptions take attributes; this one carries the child's traceback along
            value.jobwire_record = record  # type: ignore[attr-defined]
            raise value
        raise ProcessJobError(record)

    async def _replace(self) -> None:
        assert self._idle is not None
        self._idle.put_nowait(await self._spawn())

    async def close(self) -> None:
        """Stop every child."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(BaseException):
                await self._starting
        for child in list(self._children):
            if child.proc.stdin is not None:
                child.proc.stdin.close()
            child.kill()
            await child.proc.wait()
        self._children.clear()
