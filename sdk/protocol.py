"""How the protocol core talks to Redis without doing I/O itself.

Every operation of jobwire (enqueue, wait for a result, fetch a batch, ...) is a generator
that *yields* what it wants sent to Redis, a :class:`Command` or a :class:`Pipeline`, and
receives the reply through ``send()`` or an error through ``throw()``. Two small drivers run
such a generator: :func:`run_sync` over ``redis.Redis`` and :func:`run_async` over
``redis.asyncio.Redis``: each hands the loop that runs a generator (:func:`drive` or
:func:`drive_async`) a function doing one op. The conversation is written once; the drivers
are its only sync/async difference (the same shape as psycopg 3's generators and waiting functions).

Errors reach the generator already translated into jobwire's own types, so recovery logic,
such as loading a script after NOSCRIPT, is written once in :func:`call_script`.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio

from .errors import (
    RedisAuthError,
    RedisCommandError,
    RedisOutOfMemory,
    RedisUnavailable,
    ScriptMissing,
)
from .scripts import Script

__all__ = [
    "Command",
    "Gen",
    "Op",
    "Outcome",
    "Pipeline",
    "call",
    "call_script",
    "drive",
    "drive_async",
    "is_auth_failure",
    "pipeline",
    "run_async",
    "run_sync",
    "script_command",
    "translate_error",
]

T = TypeVar("T")


class Op:
    """Something a protocol generator asks its driver to do.

    The Redis drivers below understand :class:`Command` and :class:`Pipeline`; the
    in-memory twin of :mod:`jobwire.testing` has a driver and operations of its own.
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Command(Op):
    """One Redis command. ``script`` is set for EVALSHA, so NOSCRIPT can be recovered."""

    args: tuple[Any, ...]
    script: Script | None = None


@dataclass(frozen=True, slots=True)
class Pipeline(Op):
    """Commands sent in one round trip (not a transaction).

    Replies come back as a list in which a failed command's slot holds its (translated)
    exception instead of raising.
    """

    commands: tuple[Command, ...]


#: What doing an op gave: ``(True, reply)`` to send into the generator, or
#: ``(False, exception)`` to throw into it.
Outcome = tuple[bool, Any]
#: A protocol operation: yields ops, receives replies, returns a ``T``.
Gen = Generator[Op, Any, T]


def script_command(script: Script, keys: Sequence[str], argv: Sequence[Any]) -> Command:
    """The EVALSHA command that runs ``script``."""
    return Command(("EVALSHA", script.sha, len(keys), *keys, *argv), script)


def call(command: Command) -> Gen[Any]:
    """Send one command; for a script the server does not have, load it once and retry."""
    try:
        return (yield command)
    except ScriptMissing:
        if command.script is None:
            raise
        yield Command(("SCRIPT", "LOAD", command.script.source))
        return (yield command)


def call_script(script: Script, keys: Sequence[str], argv: Sequence[Any]) -> Gen[Any]:
    """Run ``script`` (see :func:`call`)."""
    return (yield from call(script_command(script, keys, argv)))


def pipeline(commands: Sequence[Command]) -> Gen[list[Any]]:
    """Send ``commands`` in one round trip and return their replies.

    A script missing on the server is loaded and its command re-sent alone (EVALSHA that
    failed with NOSCRIPT had no effect, so this is safe); any other error is raised.
    """
    replies: list[Any] = list((yield Pipeline(tuple(commands))))
    for i, reply in enumerate(replies):
        if isinstance(reply, ScriptMissing) and commands[i].script is not None:
            script = commands[i].script
            assert script is not None
            yield Command(("SCRIPT", "LOAD", script.source))
            replies[i] = yield commands[i]
        elif isinstance(reply, BaseException):
            raise reply
    return replies


def translate_error(exc: BaseException) -> BaseException:
    """Map a redis-py exception to jobwire's error tree (other exceptions pass through).

    Refused credentials are a :class:`RedisAuthError`, checked first: redis-py makes its
    ``AuthenticationError`` a ``ConnectionError``, which would read as Redis being down.
    """
    if isinstance(exc, redis.exceptions.NoScriptError):
        return ScriptMissing(str(exc))
    if is_auth_failure(exc):
        error: BaseException = RedisAuthError(f"Redis refused the credentials: {exc}")
    elif isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        error = RedisUnavailable(f"Redis is unavailable: {exc}")
    elif _out_of_memory(exc):
        error = RedisOutOfMemory(f"Redis is out of memory and refused a write: {exc}")
    elif isinstance(exc, redis.exceptions.RedisError):
        error = RedisCommandError(f"Redis refused a command: {exc}")
    else:
        return exc
    error.__cause__ = exc
    return error


_AUTH_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.AuthenticationError,
    redis.exceptions.AuthenticationWrongNumberOfArgsError,
    redis.exceptions.AuthorizationError,
)


def is_auth_failure(exc: BaseException) -> bool:
    """True when Redis refused the credentials (WRONGPASS, NOAUTH, a malformed AUTH).

    Used by :func:`translate_error` and by the retry policy of
    :class:`~jobwire.RedisSettings`, which must not retry it as if Redis were down.
    """
    if isinstance(exc, _AUTH_ERRORS):
        return True
    # an error reply that redis-py did not map (inside a script or a pipeline, say)
    text = str(exc)
    return isinstance(exc, redis.exceptions.ResponseError) and (
        "NOAUTH" in text or "WRONGPASS" in text
    )


def _out_of_memory(exc: BaseException) -> bool:
    # redis-py maps the "OOM" error prefix to OutOfMemoryError (and strips the prefix); an
    # OOM met inside a script can come wrapped in a script error instead
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return True
    return isinstance(exc, redis.exceptions.ResponseError) and (
        "OOM command not allowed" in str(exc) or str(exc).startswith("OOM ")
    )


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    return bool(cancelling is not None and cancelling())


def _replies(results: list[Any]) -> list[Any]:
    return [translate_error(r) if isinstance(r, BaseException) else r for r in results]


def _pipeline(conn: redis.Redis | redis.asyncio.Redis, op: Op) -> Any:
    """A redis-py pipeline (sync or async alike) holding ``op``'s commands, not yet sent."""
    if not isinstance(op, Pipeline):
        raise TypeError(f"{op!r} is not a Redis operation")
    pipe: Any = conn.pipeline(transaction=False)
    for command in op.commands:
        pipe.execute_command(*command.args)
    return pipe


def drive(gen: Gen[T], perform: Callable[[Op], Outcome]) -> T:
    """Run a protocol generator to its end, doing each op it yields with ``perform``."""
    try:
        op = next(gen)
        while True:
            ok, value = perform(op)
            op = gen.send(value) if ok else gen.throw(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        gen.close()


async def drive_async(gen: Gen[T], perform: Callable[[Op], Awaitable[Outcome]]) -> T:
    """Run a protocol generator to its end, awaiting ``perform`` for each op it yields."""
    try:
        op = next(gen)
        while True:
            ok, value = await perform(op)
            op = gen.send(value) if ok else gen.throw(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        gen.close()


def _perform(conn: redis.Redis, op: Op) -> Outcome:
    try:
        if isinstance(op, Command):
            return True, conn.execute_command(*op.args)  # type: ignore[no-untyped-call]
        return True, _replies(_pipeline(conn, op).execute(raise_on_error=False))
    except redis.exceptions.RedisError as exc:
        return False, translate_error(exc)


async def _perform_async(conn: redis.asyncio.Redis, op: Op) -> Outcome:
    try:
        if isinstance(op, Command):
            return True, await conn.execute_command(*op.args)  # type: ignore[no-untyped-call]
        return True, _replies(await _pipeline(conn, op).execute(raise_on_error=False))
    except redis.exceptions.RedisError as exc:
        if _being_cancelled():
            # redis-py may report a cancelled read as a connection error: a cancellation
            # must stay a cancellation
            raise asyncio.CancelledError from exc
        return False, translate_error(exc)


def run_sync(conn: redis.Redis, gen: Gen[T]) -> T:
    """Drive a protocol generator over a blocking redis-py client."""
    return drive(gen, functools.partial(_perform, conn))


async def run_async(conn: redis.asyncio.Redis, gen: Gen[T]) -> T:
    """Drive a protocol generator over an asyncio redis-py client (cancellation-safe)."""
    return await drive_async(gen, functools.partial(_perform_async, conn))
