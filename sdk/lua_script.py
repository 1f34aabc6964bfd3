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


# Every script reads with redis.pcall where one bad key must not fail the call for the others
# (a key of the wrong type is that job's problem). A key whose slot this master does not
# serve (its slot moved, or is moving, to another master of a cluster) or a cluster that is
# down is no such problem: those errors still fail the whole script, which the caller then
# sends again (RedisUnavailable), as redis.call's would.
_PCALL: Final = """
-- redis.pcall, but a key of a slot another master serves (or a cluster down) fails the call
local redis = setmetatable({pcall = function(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and type(r.err) == 'string' and
      (string.find(r.err, 'non local key', 1, true) or
       string.find(r.err, 'cluster is down', 1, true)) then
    error(r)
  end
  return r
end}, {__index = redis})
"""


def lua(shebang: str, *pieces: str) -> str:
    """A script's source: its shebang line, the ``redis.pcall`` rule above, its pieces."""
    return shebang + _PCALL.lstrip("\n") + "".join(pieces).lstrip("\n")


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
