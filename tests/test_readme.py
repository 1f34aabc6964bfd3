"""The README's promises name their tests: every test it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_the_readme_names_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    named = 0
    for bracket in re.findall(r"\[([^\]]*test_[^\]]*)\]", readme):
        current: Path | None = None
        for path, name in re.findall(r"`(?:([\w/]*test_\w+\.py))?(?:::(test_\w+))?`", bracket):
            if path:
                current = next(iter(ROOT.glob(path)), None) or next(ROOT.glob(f"tests/**/{path}"))
                assert current.exists(), path
            if name:
                assert current is not None, f"{name} has no file before it"
                assert f"def {name}(" in current.read_text(), f"{current}::{name}"
                named += 1
    assert named >= 10
