"""A type checker checks the arguments of a task's jobs: ``mypy --strict`` on code using it.

mypy runs on this checkout's source (copied into a ``jobwire`` tree on ``MYPYPATH``), so the
test does not depend on how jobwire is installed (an editable install hides it from mypy).
Third-party packages are skipped and jobwire's own modules are not reported on: the run
takes a couple of seconds, cold.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
from __future__ import annotations

from typing import Any

import jobwire
from jobwire import task
from jobwire.testing import MemoryClient
from jobwire.worker import func


@task(max_tries=5, queue_name="emails")
async def send_email(ctx: dict[str, Any], user_id: int, subject: str = "hi") -> None: ...


def report(ctx: object, month: str) -> str:
    return month


monthly = func(report, timeout=60)


def produce(client: jobwire.Client) -> jobwire.Job | None:
    monthly.enqueue(client, "2026-11")
    client.enqueue_many([send_email.spec(user_id=1), monthly.spec(month="2026-12")])
    client.enqueue("send_email", user_id="anything")  # by name: not checked
    return send_email.with_options(defer_by=60).enqueue(client, 42, subject="x")


async def produce_async(client: jobwire.AsyncClient) -> jobwire.AsyncJob | None:
    return await send_email.enqueue(client, user_id=42)


def in_a_test() -> str:
    send_email.enqueue(MemoryClient(), user_id=1)
    return monthly({}, "2026-11")
"""

BAD = """
from __future__ import annotations

from typing import Any

import jobwire
from jobwire import task


@task
async def send_email(ctx: dict[str, Any], user_id: int) -> None: ...


@task
def report(ctx: object, month: str) -> str:
    return month


async def mistakes(client: jobwire.Client, aclient: jobwire.AsyncClient) -> None:
    send_email.enqueue(client, user_id="42")  # E: arg-type
    send_email.enqueue(client, user=42)  # E: call-arg
    report.enqueue(client)  # E: call-arg
    report.enqueue(client, "2026", "extra")  # E: call-arg
    report.enqueue("not a client", "2026")  # E: arg-type
    report.spec(month=11)  # E: arg-type
    job: jobwire.AsyncJob | None = await send_email.enqueue(client, user_id=1)  # E: arg-type
    other: jobwire.Job | None = send_email.enqueue(aclient, user_id=1)  # E: assignment
"""


def source_tree(into: Path) -> Path:
    """A ``jobwire`` package of this checkout's source, as setuptools maps it."""
    package = into / "jobwire"
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "sdk", package, ignore=skip)
    shutil.copytree(ROOT / "wire", package / "wire", ignore=skip)
    shutil.copytree(ROOT / "worker", package / "worker", ignore=skip)
    return into


def test_mypy_strict_accepts_right_calls_and_names_each_wrong_one(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "bad.py").write_text(BAD)
    (tmp_path / "mypy.ini").write_text(
        "[mypy]\nstrict = True\n"
        "[mypy-jobwire.*]\nfollow_imports = silent\n"
        "[mypy-redis.*,orjson.*,msgpack.*,cloudpickle.*]\nfollow_imports = skip\n"
    )
    env = {**os.environ, "MYPYPATH": str(source_tree(tmp_path / "src"))}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", "cache",
         "--no-error-summary", "--hide-error-context", "good.py", "bad.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    errors = re.findall(r"^(\w+)\.py:(\d+): error: .*\[([\w-]+)\]$", done.stdout, re.MULTILINE)
    assert not [e for e in errors if e[0] == "good"], done.stdout
    expected = [
        ("bad", str(n), m.group(1))
        for n, line in enumerate(BAD.splitlines(), 1)
        if (m := re.search(r"# E: ([\w-]+)$", line))
    ]
    assert sorted(errors) == sorted(expected), done.stdout + done.stderr
