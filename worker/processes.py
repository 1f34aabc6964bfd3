"""Several worker processes under one supervisor: ``jobwire worker SETTINGS --processes N``.

One asyncio worker uses one core: its ``async def`` jobs share one event loop. The
supervisor starts N ordinary worker processes (each with its own connection, health
record and worker name), so async jobs use every core. It

* restarts a process that dies (a crash, the OOM killer, a SIGKILL) after a backoff that
  doubles from 0.5 s up to 30 s and starts afresh once a process has run for a minute;
* gives up and stops the others when a process exits with a configuration error (exit
  status 2) or Redis refused its login (3): restarting could not help;
* forwards SIGTERM and SIGINT to every process as one SIGTERM (each stops gracefully, as a
  single worker does); a second signal is forwarded again, which makes them exit at once.
  The processes run in a session of their own, so a terminal's Ctrl-C reaches only the
  supervisor and is counted once;
* in burst mode, ends when every process has ended.

Each process learns its number from ``JOBWIRE_PROCESS_INDEX`` (0 to N-1).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["FATAL_EXITS", "ProcessSupervisor"]

logger = logging.getLogger("jobwire.worker")

#: Exit statuses after which a worker process is not restarted (see ``jobwire.cli``).
FATAL_EXITS = frozenset({2, 3})


@dataclass(eq=False)
class _Slot:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0  # consecutive short-lived runs: the backoff's exponent
    restart_at: float | None = None
    done: bool = False
    history: list[int] = field(default_factory=list)  # pids, oldest first


class ProcessSupervisor:
    """Runs ``count`` copies of ``command`` and keeps them running until told to stop."""

    def __init__(
        self,
        command: Sequence[str],
        count: int,
        *,
        burst: bool = False,
        env: Mapping[str, str] | None = None,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        stable_after: float = 60.0,
    ) -> None:
        self.command = list(command)
        self.burst = burst
        self.env = dict(os.environ if env is None else env)
        self.backoff, self.max_backoff, self.stable_after = backoff, max_backoff, stable_after
        self.slots = [_Slot(i) for i in range(count)]
        self._exits: queue.Queue[tuple[_Slot, subprocess.Popen[bytes]]] = queue.Queue()
        self._signals = 0
        self._stopping = False
        self._status = 0

    def run(self) -> int:
        """Supervise until every process has ended; the exit status for the command."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in self.slots:
                self._start(slot)
            while not all(slot.done for slot in self.slots):
                self._step()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self._status

    # ------------------------------------------------------------------ internals

    def _step(self) -> None:
        """Wait for an exit or the next due restart, and act on it."""
        due = [s.restart_at for s in self.slots if s.restart_at is not None]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        try:
            slot, process = self._exits.get(timeout=timeout)
        except queue.Empty:
            pass
        else:
            self._ended(slot, process)
        now = time.monotonic()
        for slot in self.slots:
            if slot.restart_at is not None and slot.restart_at <= now:
                slot.restart_at = None
                if self._stopping:
                    slot.done = True
                else:
                    self._start(slot)

    def _start(self, slot: _Slot) -> None:
        env = {**self.env, "JOBWIRE_PROCESS_INDEX": str(slot.index)}
        process = subprocess.Popen(self.command, env=env, start_new_session=True)
        slot.process, slot.started = process, time.monotonic()
        slot.history.append(process.pid)
        if self._stopping:  # a signal came while it started
            process.send_signal(signal.SIGTERM)
        logger.info(
            "worker process %d/%d started (pid %d)", slot.index + 1, len(self.slots), process.pid
        )
        threading.Thread(
            target=self._watch, args=(slot, process), name=f"jobwire:watch-{slot.index}",
            daemon=True,
        ).start()  # fmt: skip

    def _watch(self, slot: _Slot, process: subprocess.Popen[bytes]) -> None:
        process.wait()
        self._exits.put((slot, process))

    def _ended(self, slot: _Slot, process: subprocess.Popen[bytes]) -> None:
        code = process.returncode
        slot.process = None
        what = f"worker process {slot.index + 1}/{len(self.slots)} (pid {process.pid})"
        if self._stopping or (code == 0 and self.burst):
            slot.done = True
            logger.info("%s ended (exit status %d)", what, code)
            return
        if code in FATAL_EXITS:
            logger.error(
                "%s exited with status %d (bad settings or refused by Redis): not restarting; "
                "stopping the other processes",
                what,
                code,
            )
            self._status = code
            slot.done = True
            self._stop_all()
            return
        ran = time.monotonic() - slot.started
        slot.failures = 0 if ran >= self.stable_after else slot.failures + 1
        delay = min(self.max_backoff, self.backoff * 2 ** max(0, slot.failures - 1))
        cause = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        logger.error("%s died (%s) after %.1fs; restarting in %.2fs", what, cause, ran, delay)
        slot.restart_at = time.monotonic() + delay

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            logger.info("%s: stopping the %d worker processes gracefully", name, len(self.slots))
        else:
            logger.warning("second %s: telling the worker processes to exit at once", name)
        self._stop_all()

    def _stop_all(self) -> None:
        self._stopping = True
        for slot in self.slots:
            if slot.restart_at is not None:  # waiting for a restart: it will not happen
                slot.restart_at, slot.done = None, True
            if slot.process is not None:
                # (it may have ended meanwhile: its watcher reports that)
                with contextlib.suppress(ProcessLookupError):
                    slot.process.send_signal(signal.SIGTERM)
