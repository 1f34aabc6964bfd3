"""A loopback TCP proxy in front of a redis-server, whose faults the test controls.

Clients and workers connect to :attr:`FaultProxy.url` instead of the server. By default the
proxy forwards bytes both ways; a test can then

- :meth:`~FaultProxy.cut` every open connection at once (both sides closed),
- hold all traffic with :meth:`~FaultProxy.stalled` (bytes wait in the kernel's buffers and
  flow again when the block ends, late, as on a congested network),
- refuse new connections with :meth:`~FaultProxy.refusing`,
- arm a :class:`Rule` with :meth:`~FaultProxy.on`: when a request containing given bytes
  (a command name, a script's SHA) goes by, the rule drops the request before Redis sees it,
  lets Redis run it and drops the reply (a half-finished call), or cuts the connection a
  moment later (a blocking command cut while it waits).

The proxy runs on its own event loop in a background thread, so it serves blocking and
asyncio clients alike. It is test code: it matches raw RESP bytes, which is all it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from tests.helpers.support import LoopThread

Action = Literal["drop_request", "drop_reply", "cut_later"]


def command_name(name: str) -> bytes:
    """The RESP bytes of a command name as a client sends it (``$4\\r\\nPING\\r\\n``).

    Matching these, rather than the bare word, skips the word inside a script's source.
    """
    return b"$%d\r\n%s\r\n" % (len(name), name.encode())


@dataclass(eq=False)
class Rule:
    """What to do to the next ``times`` requests containing ``pattern``."""

    pattern: bytes
    action: Action
    times: int = 1
    delay: float = 0.3
    matched: int = 0
    acted: int = 0
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def wait(self, count: int | None = None, timeout: float = 30.0) -> None:
        """Wait until the rule has acted ``count`` times (all its ``times`` by default)."""
        count = self.times if count is None else count
        with self._changed:
            if not self._changed.wait_for(lambda: self.acted >= count, timeout):
                raise AssertionError(f"{self} acted {self.acted} of {count} times in {timeout}s")

    def _act(self) -> None:
        with self._changed:
            self.acted += 1
            self._changed.notify_all()

    def __str__(self) -> str:
        return f"rule {self.action} on {self.pattern!r}"


class _Link:
    """One client connection and its connection to the server."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.drop_reply: Rule | None = None
        self.tail = b""

    def close(self) -> None:
        """Close both sockets now: a peer sees the end before anything the test does next.

        ``abort()`` alone closes the socket on the proxy loop's next turn, after a rule has
        told the test it acted: Redis could then hand a job to the read of a link already
        cut (the test thread's next command arriving first).
        """
        for writer in (self.client, self.server):
            with contextlib.suppress(Exception):
                writer.transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                writer.transport.abort()


class FaultProxy:
    """TCP proxy from a free loopback port to ``127.0.0.1:upstream_port``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.connections = 0
        self._loop = LoopThread()
        self._links: set[_Link] = set()
        self._rules: list[Rule] = []
        self._refusing = False
        self._flowing: asyncio.Event | None = None
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> FaultProxy:
        async def listen() -> None:
            self._flowing = asyncio.Event()
            self._flowing.set()
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        self._loop.run(listen())
        return self

    def close(self) -> None:
        async def stop() -> None:
            assert self._server is not None and self._flowing is not None
            self._server.close()
            self._flowing.set()
            for link in list(self._links):
                link.close()
            others = asyncio.all_tasks() - {asyncio.current_task()}
            await asyncio.gather(*others, return_exceptions=True)

        self._loop.run(stop())
        self._loop.close()

    # ------------------------------------------------------------------ controls

    def on(self, pattern: bytes, action: Action, *, times: int = 1, delay: float = 0.3) -> Rule:
        """Arm a rule for requests containing ``pattern``; it retires after ``times`` acts."""
        rule = Rule(pattern, action, times, delay)
        self._loop.run(self._add_rule(rule))
        return rule

    async def _add_rule(self, rule: Rule) -> None:
        self._rules.append(rule)

    def off(self, rule: Rule) -> None:
        """Disarm a rule before it has acted all its times."""

        async def remove() -> None:
            if rule in self._rules:
                self._rules.remove(rule)

        self._loop.run(remove())

    def cut(self) -> int:
        """Close every open connection now; returns how many there were."""

        async def cut_all() -> int:
            links = list(self._links)
            for link in links:
                link.close()
            return len(links)

        count: int = self._loop.run(cut_all())
        return count

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        """Hold every byte in both directions until the block ends."""
        self._loop.loop.call_soon_threadsafe(self._set_flowing, False)
        try:
            yield
        finally:
            self._loop.loop.call_soon_threadsafe(self._set_flowing, True)

    def _set_flowing(self, flowing: bool) -> None:
        assert self._flowing is not None
        if flowing:
            self._flowing.set()
        else:
            self._flowing.clear()

    @contextlib.contextmanager
    def refusing(self) -> Iterator[None]:
        """Close new connections as soon as they are accepted, and cut the open ones."""
        self._refusing = True
        self.cut()
        try:
            yield
        finally:
            self._refusing = False

    # ------------------------------------------------------------------ forwarding

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        link = _Link(writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pump(link, reader, up_writer, self._on_request),
                self._pump(link, up_reader, writer, self._on_reply),
            )
        finally:
            self._links.discard(link)
            link.close()

    async def _pump(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        inspect: Callable[[_Link, bytes], bool],
    ) -> None:
        """Forward one direction until a side closes or ``inspect`` says to end the link."""
        assert self._flowing is not None
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(65536)
                if not data:
                    break
                await self._flowing.wait()  # a stall that began during the read holds it
                if not inspect(link, data):
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            link.close()

    def _on_request(self, link: _Link, data: bytes) -> bool:
        """Apply the rules to a request; False drops it (and the link)."""
        rule = self._match(link, data)
        if rule is None:
            return True
        if rule.action == "drop_request":
            rule._act()
            return False
        if rule.action == "drop_reply":
            link.drop_reply = rule
        else:  # cut_later
            asyncio.get_running_loop().call_later(rule.delay, _cut, link, rule)
        return True

    @staticmethod
    def _on_reply(link: _Link, data: bytes) -> bool:
        """A reply the armed rule wants lost is dropped with the link."""
        if link.drop_reply is None:
            return True
        link.drop_reply._act()
        return False

    def _match(self, link: _Link, data: bytes) -> Rule | None:
        window = link.tail + data
        longest = max((len(r.pattern) for r in self._rules), default=1)
        link.tail = window[-(longest - 1) :] if longest > 1 else b""
        for rule in self._rules:
            if rule.pattern in window:
                rule.matched += 1
                if rule.matched >= rule.times:
                    self._rules.remove(rule)
                link.tail = b""
                return rule
        return None


def _cut(link: _Link, rule: Rule) -> None:
    link.close()
    rule._act()
