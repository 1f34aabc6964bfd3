"""Real Chromium for the browser tests, and the dashboard served by uvicorn in a thread.

The tests drive Debian's ``chromium`` (or ``$CHROMIUM``) with Playwright; Playwright never
downloads a browser of its own here. Without Chromium the tests fail, they do not skip:
``apt-get install chromium`` (``.ci/run`` does it).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import jobwire
from jobwire.dashboard import create_app
from jobwire.worker import Worker
from tests.helpers.redis_harness import free_port
from tests.helpers.support import LoopThread

#: Where the test run saves its screenshots (git-ignored; the README shows a copy of one,
#: ``screenshots/overview.png``, refreshed by hand so that test runs leave the tree clean).
SCREENSHOTS = Path(__file__).parent / "screenshots" / "run"


def chromium_path() -> str:
    found = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not found:
        pytest.fail(
            "the dashboard's browser tests need Chromium: apt-get install chromium "
            "(or set CHROMIUM to its path)",
            pytrace=False,
        )
    return found


class Server:
    """The dashboard app on a free loopback port, served by uvicorn in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning",
            timeout_graceful_shutdown=1, lifespan="on",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the dashboard did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def serve(redis_url: str, token: str) -> Iterator[Server]:
    client = jobwire.AsyncClient.from_url(redis_url)
    server = Server(create_app(client, token=token)).start()
    yield server
    server.stop()


class Workers:
    """In-process workers that a test can stop one by one."""

    def __init__(self, redis_url: str, loop: LoopThread) -> None:
        self.redis_url = redis_url
        self.loop = loop
        self.running: list[Worker] = []

    def start(self, functions: Any, **options: Any) -> Worker:
        options.setdefault("health_check_interval", 0.5)
        worker = Worker(functions, redis_settings=self.redis_url, handle_signals=False, **options)
        self.loop.run(worker.startup())
        self.running.append(worker)
        return worker

    def stop(self, worker: Worker) -> None:
        self.running.remove(worker)
        self.loop.loop.call_soon_threadsafe(worker.stop)
        self.loop.run(worker.shutdown(), timeout=30)

    def close(self) -> None:
        for worker in list(self.running):
            self.stop(worker)
