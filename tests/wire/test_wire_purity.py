"""wire/ is pure code: no Redis, no sockets, no files, no processes."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import jobwire.wire as wire

WIRE_MODULES = sorted(Path(wire.__file__).parent.glob("*.py"))
ALLOWED_IMPORTS = {
    "__future__", "typing", "dataclasses", "enum", "uuid", "datetime", "decimal", "hashlib",
    "hmac", "pickle", "re", "collections", "contextlib", "traceback", "math",
    "orjson", "msgpack", "cloudpickle",
}  # fmt: skip
FORBIDDEN_CALLS = {"open", "print", "input", "exec", "eval", "__import__"}


@pytest.mark.parametrize("path", WIRE_MODULES, ids=lambda p: p.name)
def test_wire_modules_import_only_pure_libraries(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            names = []
        for name in names:
            assert name.split(".")[0] in ALLOWED_IMPORTS, f"{path.name} imports {name}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, f"{path.name} calls {node.func.id}()"


def test_importing_the_wire_package_loads_no_io_library() -> None:
    code = (
        "import sys, jobwire.wire; "
        "io = ('redis', 'socket', 'asyncio', 'subprocess'); "
        "bad = sorted(m for m in io if m in sys.modules); "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
