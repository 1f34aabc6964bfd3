"""``jobwire dashboard``: the command serves the app, with the access rules it promises."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from tests.dashboard.conftest import TOKEN
from tests.helpers.redis_harness import free_port
from tests.helpers.workers import ROOT, jobwire_cli


def test_read_only_without_a_token_refuses_to_listen_beyond_loopback(redis_url: str) -> None:
    done = jobwire_cli("dashboard", "--read-only", "--host", "0.0.0.0", url=redis_url)
    assert done.returncode == 2
    assert "loopback only" in done.stderr and "--token" in done.stderr


def test_the_command_serves_the_dashboard_behind_its_token(redis_url: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobwire", "dashboard", "--url", redis_url, "--port", str(port)],
        cwd=ROOT, env={"JOBWIRE_DASHBOARD_TOKEN": TOKEN, "PATH": ""},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first and TOKEN not in first  # not echoed
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                denied = httpx.get(base + "/")
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert denied.status_code == 401
        page = httpx.get(base + "/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert page.status_code == 200 and "No queues yet" in page.text
    finally:
        proc.terminate()
        proc.wait(10)
