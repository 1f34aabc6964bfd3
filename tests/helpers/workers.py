"""Workers for tests: in-process on the test's Redis, or as ``jobwire`` processes.

Processes run from the repository root, so settings are named from there
(``tests.worker.fault_settings.Settings``): ``jobwire worker`` puts the current directory
on ``sys.path``, and its process pool hands that path on to its children.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jobwire.worker import Worker
from tests.helpers.support import LoopThread
from tests.worker.jobs import all_functions

#: the repository root: the working directory of every ``jobwire`` process a test starts
ROOT = Path(__file__).resolve().parents[2]

StartWorker = Callable[..., Worker]


@pytest.fixture
def start_worker(redis_url: str, loop_thread: LoopThread) -> Iterator[StartWorker]:
    started: list[Worker] = []

    def start(functions: Any = None, url: str | None = None, **options: Any) -> Worker:
        options.setdefault("allow_abort_jobs", True)
        options.setdefault("process_workers", 2)
        worker = Worker(
            all_functions() if functions is None else functions,
            redis_settings=url or redis_url,
            handle_signals=False,
            **options,
        )
        loop_thread.run(worker.startup())
        started.append(worker)
        return worker

    yield start
    for worker in started:
        loop_thread.loop.call_soon_threadsafe(worker.stop)
        loop_thread.run(worker.shutdown(), timeout=60)


def jobwire_cli(
    *args: str, url: str | None = None, timeout: float = 60, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    if url:
        env["REDIS_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "jobwire", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Workers:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(
        self, url: str, settings: str = "tests.worker.fault_settings.Settings", **env: str
    ) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"worker{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobwire", "worker", settings],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "REDIS_URL": url, **env},
        )
        self.procs.append(proc)
        return proc

    def live(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path)
    yield w
    w.close()
