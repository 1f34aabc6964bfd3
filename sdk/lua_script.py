"""The :class:`Script` type: a Lua source with its documented KEYS, ARGV and SHA1.

Every script starts with a Redis 7 shebang, so that Redis knows up front what it may do (see
``scripts``); :func:`lua` joins a shebang and the script's pieces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

__all__ = ["ALLOW_OOM", "NO_WRITES", "WRITES", "Script", "lua"]

# Redis 7 script flags (the first line of a script)
WRITES: Final = "#!lua\n"  # refused whole under OOM ("deny-oom")
ALLOW_OOM: Final = "#!lua flags=allow-oom\n"
NO_WRITES: Final = "#!lua flags=no-writes\n"


def lua(shebang: str, *pieces: str) -> str:
    """A script's source: its shebang line, then its pieces."""
    return shebang + "".join(pieces).lstrip("\n")


@dataclass(frozen=True, slots=True)
class Script:
    """A named Lua script with its documented KEYS and ARGV."""

    name: str
    keys: tuple[str, ...]
    argv: tuple[str, ...]
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())
