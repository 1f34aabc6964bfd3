"""Framework helpers cost nothing to those who do not use them.

``import jobwire`` (and making a client) imports no web framework; ``jobwire.django`` and
``jobwire.fastapi`` import theirs only when imported, and ``jobwire.fastapi`` needs only
Starlette, so it serves plain Starlette apps too.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.support import need

FRAMEWORKS = ("django", "starlette", "fastapi", "flask", "aiohttp")


def imported_after(code: str) -> set[str]:
    """Which of FRAMEWORKS a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    return {name for name in FRAMEWORKS if name in loaded}


def test_import_jobwire_imports_no_web_framework() -> None:
    code = "import jobwire\njobwire.Client.from_url('redis://localhost'); jobwire.AsyncClient"
    assert imported_after(code) == set()


def test_each_helper_imports_only_its_framework() -> None:
    need("django", "django")
    need("starlette", "fastapi")
    assert imported_after("import jobwire.django") == {"django"}
    assert imported_after("import jobwire.fastapi") == {"starlette"}
