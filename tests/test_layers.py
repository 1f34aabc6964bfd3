"""The layers of jobwire, checked from the import graph of its source.

    jobwire.wire                       imports nothing of jobwire
    jobwire (clients, protocol core)   imports jobwire.wire, never the worker or the top
    jobwire.worker                     imports the core and the wire, never the top
    jobwire.testing, jobwire.cli,
    jobwire.__main__                   on top: may import everything

Every import counts, also one inside a function or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"wire": "jobwire.wire", "worker": "jobwire.worker", "sdk": "jobwire"}
TOP = ("jobwire.testing", "jobwire.cli", "jobwire.__main__")


def layer(module: str) -> str:
    if module == "jobwire.wire" or module.startswith("jobwire.wire."):
        return "wire"
    if module == "jobwire.worker" or module.startswith("jobwire.worker."):
        return "worker"
    if any(module == top or module.startswith(top + ".") for top in TOP):
        return "top"
    return "core"


#: what each layer may import (besides itself)
ALLOWED = {
    "wire": set(),
    "core": {"wire"},
    "worker": {"wire", "core"},
    "top": {"wire", "core", "worker"},
}


def module_name(path: Path) -> str:
    folder = path.relative_to(ROOT).parts[0]
    parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGES[folder], *parts])


def imports_of(path: Path, module: str) -> set[str]:
    """Every jobwire module ``path`` imports (relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # ``from jobwire import defaults``: the names may be modules themselves
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "jobwire" or name.startswith("jobwire.")}


def graph() -> dict[str, set[str]]:
    sources = [p for folder in PACKAGES for p in (ROOT / folder).rglob("*.py")]
    return {module_name(p): imports_of(p, module_name(p)) for p in sources}


def violations(edges: dict[str, set[str]]) -> list[str]:
    known = set(edges)
    out = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            if target not in known and target != "jobwire":
                continue  # a name imported from a module, not a module
            if target == "jobwire":
                target = "jobwire.__init__"
            src, dst = layer(source), layer(target)
            if dst != src and dst not in ALLOWED[src]:
                out.append(f"{source} ({src}) imports {target} ({dst})")
    return out


def test_the_source_keeps_its_layers() -> None:
    edges = graph()
    assert "jobwire.consumer" in edges and "jobwire.worker.runner" in edges
    assert violations(edges) == []


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("jobwire.producer", "jobwire.worker.attempt"),  # the core importing the worker
        ("jobwire.wire.codec", "jobwire.errors"),  # the wire importing the clients
        ("jobwire.worker.runner", "jobwire.testing"),  # the worker importing the top
    ],
)
def test_a_wrong_arrow_is_caught(source: str, target: str) -> None:
    edges = graph()
    edges[source] = {*edges[source], target}
    assert violations(edges) == [f"{source} ({layer(source)}) imports {target} ({layer(target)})"]
