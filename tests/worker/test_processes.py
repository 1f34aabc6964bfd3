"""``jobwire worker --processes N``: a supervisor that keeps N worker processes running."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import jobwire
from jobwire.worker.processes import ProcessSupervisor
from tests.helpers.support import wait_until
from tests.helpers.workers import ROOT


def _supervisor(url: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobwire", "worker", *args],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


def _records(client: jobwire.Client) -> dict[str, bytes]:
    return dict(client._run(client._core.health_records("default")))


def _pids(log: Path) -> list[int]:
    return [int(p) for p in re.findall(r"started \(pid (\d+)\)", log.read_text())]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def test_n_processes_run_jobs_restart_when_killed_and_stop_together(
    redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "supervisor.log"
    supervisor = _supervisor(redis_url, log, "tests.cli_settings.Named", "--processes", "2")
    try:
        with jobwire.Client.from_url(redis_url) as client:
            # one health record per process, each under its own name
            assert wait_until(lambda: set(_records(client)) == {"named-0", "named-1"}, 30)
            jobs = [client.enqueue("double", i) for i in range(20)]
            assert [job.result(timeout=30) for job in jobs] == [2 * i for i in range(20)]

            first, second = _pids(log)
            os.kill(first, signal.SIGKILL)  # the OOM killer, say
            assert wait_until(lambda: len(_pids(log)) == 3, 30), log.read_text()
            assert "died (signal SIGKILL)" in log.read_text()
            replacement = _pids(log)[2]
            assert _alive(second) and _alive(replacement)
            assert client.enqueue("double", 21).result(timeout=30) == 42

        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        assert not _alive(second) and not _alive(replacement)
        assert "stopping the 2 worker processes gracefully" in log.read_text()
        # each process's own lines say which process wrote them
        lines = log.read_text().splitlines()
        assert all(any(f"[process {n}]: " in line for line in lines) for n in (0, 1))
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()


def test_burst_mode_ends_when_every_process_has_ended(redis_url: str, tmp_path: Path) -> None:
    with jobwire.Client.from_url(redis_url) as client:
        jobs = [client.enqueue("double", i) for i in range(10)]
        log = tmp_path / "burst.log"
        supervisor = _supervisor(
            redis_url, log, "tests.cli_settings.Settings", "--processes", "2", "--burst"
        )
        assert supervisor.wait(timeout=60) == 0, log.read_text()
        assert [job.result(timeout=1) for job in jobs] == [2 * i for i in range(10)]
        assert len(_pids(log)) == 2  # none restarted


def test_bad_settings_are_refused_before_any_process_starts(redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "bad.log"
    supervisor = _supervisor(redis_url, log, "tests.cli_settings.Nope", "--processes", "3")
    assert supervisor.wait(timeout=30) == 2
    assert _pids(log) == [] and log.read_text().count("\n") == 1


def test_a_process_that_cannot_start_stops_them_all(caplog: pytest.LogCaptureFixture) -> None:
    # exit status 2 (bad settings) or 3 (refused by Redis): restarting cannot help
    code = (
        "import os, sys, time\n"
        "sys.exit(2) if os.environ['JOBWIRE_PROCESS_INDEX'] == '1' else time.sleep(60)"
    )
    with caplog.at_level(logging.INFO, "jobwire.worker"):
        status = ProcessSupervisor([sys.executable, "-c", code], 2).run()
    assert status == 2
    assert "exited with status 2" in caplog.text and "not restarting" in caplog.text


def test_a_crashing_process_is_restarted_with_a_growing_backoff(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    # it crashes twice, then runs to the end of its (burst) work
    count = tmp_path / "runs"
    code = (
        f"import pathlib, sys; p = pathlib.Path({str(count)!r}); "
        "n = len(p.read_text()) if p.exists() else 0; p.write_text('x' * (n + 1)); "
        "sys.exit(0 if n >= 2 else 1)"
    )
    supervisor = ProcessSupervisor([sys.executable, "-c", code], 1, burst=True, backoff=0.05)
    with caplog.at_level(logging.INFO, "jobwire.worker"):
        assert supervisor.run() == 0
    assert count.read_text() == "xxx"
    delays = [float(d) for d in re.findall(r"restarting in ([\d.]+)s", caplog.text)]
    assert delays == [0.05, 0.1]
