"""The ``jobwire`` command and ``python -m jobwire`` are the same program."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jobwire


def test_console_script_and_module_agree() -> None:
    script = shutil.which("jobwire", path=str(Path(sys.executable).parent))
    assert script is not None, "the jobwire console script is not installed"
    a = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    b = subprocess.run(
        [sys.executable, "-m", "jobwire", "--version"], capture_output=True, text=True, check=True
    )
    assert a.stdout == b.stdout
    assert a.stdout.startswith(f"jobwire {jobwire.__version__} (wire 1.0;")
