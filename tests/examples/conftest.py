"""Helpers to load the example apps as their users would."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.helpers.support import need

__all__ = ["EXAMPLES", "load_module", "need", "run_worker"]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_worker(settings: str, cwd: Path, redis_url: str) -> subprocess.CompletedProcess[str]:
    """Run the example's worker as its users would: ``jobwire worker ... --burst``."""
    return subprocess.run(
        [sys.executable, "-m", "jobwire", "worker", settings, "--burst"],
        cwd=cwd,
        env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
