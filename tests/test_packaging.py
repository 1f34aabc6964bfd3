"""The project installs and imports as a built wheel, not only as an editable checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_built_wheel_installs_and_imports(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(ROOT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("jobwire-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "jobwire/__init__.py",
        "jobwire/py.typed",
        "jobwire/wire/codec.py",
        "jobwire/wire/SPEC.md",
        "jobwire/wire/schema/job.schema.json",
        "jobwire/wire/vectors/jobs.json",
        "jobwire/worker/runner.py",
        "jobwire/cli/__init__.py",
        "jobwire/testing/__init__.py",
        "jobwire/dashboard/app.py",
        "jobwire/dashboard/templates/overview.html",
        "jobwire/dashboard/static/htmx.min.js",
        "jobwire/dashboard/static/htmx.LICENSE",
        "jobwire/dashboard/static/uPlot.iife.min.js",
        "jobwire/dashboard/static/uPlot.LICENSE",
        "jobwire/dashboard/static/dashboard.js",
    ):
        assert expected in names, expected
    assert not any(n.startswith(("tests/", "sdk/", "wire/", "worker/")) for n in names)

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    code = (
        "import jobwire, jobwire.wire, jobwire.worker, jobwire.cli, jobwire.testing; "
        "print(jobwire.__file__); print(jobwire.wire.Codec().decode_job("
        "jobwire.wire.Codec().encode_job(jobwire.wire.JobEnvelope("
        "id='w', function='f', enqueued_ms=0, args=(1,)))).args)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    file_line, args_line = out.stdout.splitlines()
    assert file_line.startswith(str(target))
    assert args_line == "(1,)"
    cli = subprocess.run(
        [sys.executable, "-m", "jobwire", "--version"], cwd=tmp_path, env=env,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert cli.stdout.startswith("jobwire ")
