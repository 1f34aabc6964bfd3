"""Job functions and hostile values for the dashboard tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from jobwire.worker import Function, func

#: Markup that would run script if a page put it in as HTML instead of text.
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


class Trap:
    """Unpickling this creates a file: proof that something unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.touch, (Path(self.path),))


async def ok(ctx: dict[str, Any], x: Any = None) -> Any:
    return x


async def boom(ctx: dict[str, Any], message: str = "it broke") -> None:
    raise ValueError(message)


async def nap(ctx: dict[str, Any], seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "rested"


async def working(ctx: dict[str, Any], seconds: float, message: str = "resizing") -> str:
    """Reports 40 % done, then 80 % half-way through ``seconds``."""
    ctx["progress"](0.4, message)
    await asyncio.sleep(seconds / 2)
    ctx["progress"](0.8, message)
    await asyncio.sleep(seconds / 2)
    return "done"


async def trap(ctx: dict[str, Any], path: str) -> Trap:
    return Trap(path)


def functions() -> list[Function]:
    return [func(ok), func(boom, max_tries=1), func(nap), func(trap), func(working)]
