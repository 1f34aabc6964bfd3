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

On a Redis Cluster the same generators run over redis-py's cluster clients: a command goes
to the master of its keys' slot (every key of one queue shares a slot), a pipeline's
commands to their slots' masters, MOVED and ASK are followed by redis-py. A command without
keys names where it goes: ``route`` (the master of that key's slot: ``TIME``, ``SCAN`` of
one queue's keys, ``WAIT`` after a write) or ``node`` (one of the masters listed by the
:class:`Primaries` op, for a ``SCAN`` of the whole keyspace). A single Redis ignores both.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from .errors import (
    ClientClosed,
    RedisAuthError,
    RedisCommandError,
    RedisOutOfMemory,
    RedisUnavailable,
    ScriptMissing,
)
from .lua_script import Script
from .packing import Lane, SyncLane, plain_pipeline

__all__ = [
    "AsyncRedis",
    "Command",
    "Gen",
    "Op",
    "Outcome",
    "Pipeline",
    "Primaries",
    "SyncRedis",
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

#: What the blocking driver runs on: a single Redis (or Sentinel's master) or a cluster.
SyncRedis = redis.Redis | redis.cluster.RedisCluster
#: What the asyncio driver runs on.
AsyncRedis = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster


class Op:
    """Something a protocol generator asks its driver to do.

    The Redis drivers below understand :class:`Command` and :class:`Pipeline`; the
    in-memory twin of :mod:`jobwire.testing` has a driver and operations of its own.
    """

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Command(Op):
    """One Redis command. ``script`` is set for EVALSHA, so NOSCRIPT can be recovered.

    ``route`` and ``node`` say where a command without keys goes on a cluster: the master
    of ``route``'s slot, or ``node`` (from :class:`Primaries`). A single Redis ignores them.
    """

    args: tuple[Any, ...]
    script: Script | None = None
    route: str | None = None
    node: Any = None


@dataclass(frozen=True, slots=True)
class Primaries(Op):
    """Ask for every master: the reply is a list of ``node`` values for :class:`Command`.

    ``[None]`` on a single Redis (the one server), the masters on a cluster.
    """


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
        yield _load(command)
        try:
            return (yield command)
        except ScriptMissing as exc:
            raise _moving(exc) from exc


def _load(command: Command) -> Command:
    """SCRIPT LOAD of a script call's script: on a cluster, on the master of its first key."""
    assert command.script is not None
    route = str(command.args[3]) if int(command.args[2]) > 0 else None
    return Command(("SCRIPT", "LOAD", command.script.source), route=route)


def call_script(script: Script, keys: Sequence[str], argv: Sequence[Any]) -> Gen[Any]:
    """Run ``script`` (see :func:`call`)."""
    return (yield from call(script_command(script, keys, argv)))


def pipeline(commands: Sequence[Command]) -> Gen[list[Any]]:
    """Send ``commands`` in one round trip and return their replies.

    A script missing on the server is loaded and its command re-sent (EVALSHA that failed
    with NOSCRIPT had no effect, so this is safe), together with the pipeline's ``WAIT``
    commands, which must follow the write on its connection; any other error is raised.
    """
    replies: list[Any] = list((yield Pipeline(tuple(commands))))
    missing = [i for i, r in enumerate(replies)
               if isinstance(r, ScriptMissing) and commands[i].script is not None]  # fmt: skip
    if missing:
        # after a restart or failover every script call may miss: load each script once
        # per slot's master (per hash tag), then re-send the calls in one round trip
        loads = {(commands[i].args[1], _tag(commands[i])): _load(commands[i]) for i in missing}
        for loaded in (yield Pipeline(tuple(loads.values()))):
            if isinstance(loaded, BaseException):
                raise loaded
        waits = [i for i, c in enumerate(commands) if c.args[0] == "WAIT"]
        again = yield Pipeline((*(commands[i] for i in missing), *(commands[w] for w in waits)))
        for i, reply in zip(missing, again, strict=False):
            replies[i] = _moving(reply) if isinstance(reply, ScriptMissing) else reply
        for w, ack in zip(waits, again[len(missing) :], strict=True):
            replies[w] = ack if isinstance(ack, BaseException) else min(ack, replies[w])
    for reply in replies:
        if isinstance(reply, BaseException):
            raise reply
    return replies


def _moving(exc: ScriptMissing) -> RedisUnavailable:
    """A script missing right after it was loaded: the slot moved between the two calls.

    (During a resharding the load went to the old master and the call was redirected to
    the new one.) Transient: the caller retries as when Redis is unreachable.
    """
    error = RedisUnavailable(f"the queue's slot is moving between masters: {exc}")
    error.__cause__ = exc
    return error


def _tag(command: Command) -> str | None:
    """The hash tag of a script call's first key (its slot), or None without keys."""
    if int(command.args[2]) == 0:
        return None
    key = str(command.args[3])
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1 : end] if 0 <= start < end - 1 else key


def translate_error(exc: BaseException) -> BaseException:
    """Map a redis-py exception to jobwire's error tree (other exceptions pass through).

    Refused credentials are a :class:`RedisAuthError`, checked first: redis-py makes its
    ``AuthenticationError`` a ``ConnectionError``, which would read as Redis being down.
    """
    if isinstance(exc, redis.exceptions.NoScriptError):
        return ScriptMissing(str(exc))
    if isinstance(exc, (redis.exceptions.MovedError, redis.exceptions.AskError)):
        # a plain client on a node of a cluster: say so (redis-py strips the MOVED prefix)
        error: BaseException = RedisCommandError(
            f"Redis replied MOVED/ASK {exc}: this server is a node of a Redis Cluster; "
            "connect with a redis+cluster://host:port,host:port URL (or "
            "RedisSettings(cluster_nodes=...))"
        )
    elif is_auth_failure(exc):
        error = RedisAuthError(f"Redis refused the credentials: {exc}")
    elif isinstance(exc, _UNAVAILABLE) or "TTL exhausted" in str(exc):
        # (redis-py's cluster client gives up with "TTL exhausted" after 16 redirections:
        # a slot moving or a failover under way)
        error = RedisUnavailable(f"Redis is unavailable: {exc}")
    elif "non local key" in str(exc):
        # a script met a key already migrated while its slot moves to another master; the
        # scripts are written to be sent again (a resent call redoes only what is left)
        error = RedisUnavailable(f"the queue's slot is moving between masters: {exc}")
    elif _out_of_memory(exc):
        error = RedisOutOfMemory(f"Redis is out of memory and refused a write: {exc}")
    elif isinstance(exc, (redis.exceptions.RedisError, redis.exceptions.RedisClusterException)):
        error = RedisCommandError(f"Redis refused a command: {exc}")
    else:
        return exc
    error.__cause__ = exc
    return error


#: Redis (or the part of a cluster that serves a slot) cannot be reached right now.
_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.MasterDownError,
)
#: What a driver catches from redis-py (its cluster errors are not all RedisErrors).
_REDIS_ERRORS = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException)

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


def _pipeline(conn: SyncRedis | AsyncRedis, op: Op) -> Any:
    """A redis-py pipeline (sync or async, single or cluster) holding ``op``'s commands."""
    if not isinstance(op, Pipeline):
        raise TypeError(f"{op!r} is not a Redis operation")
    if _is_cluster(conn):
        pipe: Any = conn.pipeline()  # never a transaction: commands go to their slots' nodes
        scripts_by_key = isinstance(conn, redis.cluster.RedisCluster)
        for command in op.commands:
            target = _target(conn, command)
            if scripts_by_key and not target and command.args[0] == "EVALSHA":
                target = _script_target(conn, command)
            pipe.execute_command(*command.args, **target)
        return pipe
    pipe = conn.pipeline(transaction=False)
    for command in op.commands:
        pipe.execute_command(*command.args)
    return pipe


def _is_cluster(conn: object) -> bool:
    return isinstance(conn, (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster))


def _target(conn: Any, command: Command) -> dict[str, Any]:
    """redis-py's ``target_nodes`` for a keyless command on a cluster (else nothing)."""
    if (command.node is None and command.route is None) or not _is_cluster(conn):
        return {}
    if command.node is not None:
        return {"target_nodes": command.node}
    if command.route is not None:
        return {"target_nodes": conn.get_node_from_key(command.route)}
    return {}


def _script_target(conn: Any, command: Command) -> dict[str, Any]:
    """The master of a script call's first key, for redis-py's blocking cluster pipeline.

    Unlike its other paths, that pipeline asks a node for the keys of every ``EVALSHA``
    (``COMMAND GETKEYS``: one more round trip per script call); the first key says where
    the call goes, and a MOVED reply still sends it on.
    """
    if len(command.args) > 3 and int(command.args[2]) > 0:
        return {"target_nodes": conn.get_node_from_key(command.args[3])}
    return {}


def _lost_a_node(conn: object, outcomes: list[Any]) -> bool:
    """True when a cluster client met an unreachable node: its slot map must be relearned.

    redis-py does not always refresh it by itself (seen with redis-py 8.1 after a slot had
    moved: it kept connecting to a SIGKILLed master long after its replica took over).
    """
    return _is_cluster(conn) and any(isinstance(o, RedisUnavailable) for o in outcomes)


def _one(command: Command, reply: Any) -> Any:
    """A cluster client's reply of one node as a single Redis gives it.

    redis-py merges SCAN replies per node (a dict of cursors) even when one node was asked.
    """
    if command.args[0] == "SCAN" and isinstance(reply, tuple) and isinstance(reply[0], dict):
        cursors = list(reply[0].values())
        return (cursors[0] if len(cursors) == 1 else 0), reply[1]
    return reply


def _primaries(conn: Any) -> list[Any]:
    return list(conn.get_primaries()) if _is_cluster(conn) else [None]


def _routes(conn: Any, op: Op) -> list[Any] | None:
    """The masters of a pipeline's WAITs before it runs (cluster only; else None)."""
    if not isinstance(op, Pipeline) or not _is_cluster(conn):
        return None
    waits = [c for c in op.commands if c.args[0] == "WAIT" and c.route is not None]
    return [conn.get_node_from_key(c.route) for c in waits] or None


def _checked_waits(conn: Any, op: Op, before: list[Any] | None, replies: list[Any]) -> list[Any]:
    """WAIT replies that count: 0 where the slot's master changed during the pipeline.

    A WAIT counts the replicas that have the writes *of its own connection*: when a
    failover or a resharding moved the write to another master meanwhile, the WAIT sent to
    the former one proves nothing, so it confirms no replica.
    """
    if before is None:
        return replies
    assert isinstance(op, Pipeline)
    waits = iter(before)
    for i, command in enumerate(op.commands):
        waited = command.args[0] == "WAIT" and command.route is not None
        if waited and conn.get_node_from_key(command.route).name != next(waits).name:
            replies[i] = 0
    return replies


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


def _perform(conn: SyncRedis, op: Op, lane: SyncLane | None = None) -> Outcome:
    try:
        if lane is not None and isinstance(op, (Command, Pipeline)):
            replies = lane.send(_argses(op))
            if replies is not None:
                return _laned(op, replies)
        if isinstance(op, Command):
            return True, _one(op, conn.execute_command(*op.args, **_target(conn, op)))  # type: ignore[no-untyped-call]
        if isinstance(op, Primaries):
            return True, _primaries(conn)
        before = _routes(conn, op)
        replies = _replies(_pipeline(conn, op).execute(raise_on_error=False))
        if _lost_a_node(conn, replies):
            conn.nodes_manager.initialize()  # type: ignore[union-attr]
        return True, _checked_waits(conn, op, before, replies)
    except _REDIS_ERRORS as exc:
        error = translate_error(exc)
        if _lost_a_node(conn, [error]):
            with contextlib.suppress(*_REDIS_ERRORS):
                conn.nodes_manager.initialize()  # type: ignore[union-attr]
        return False, error


async def _perform_async(conn: AsyncRedis, op: Op, lane: Lane | None = None) -> Outcome:
    try:
        if isinstance(conn, redis.asyncio.cluster.RedisCluster):
            # learns the slots on first use (a no-op after that): routes need them
            await conn.initialize()
        elif lane is not None and isinstance(op, (Command, Pipeline)):
            replies = await lane.send(_argses(op))
            if replies is not None:
                return _laned(op, replies)
        if isinstance(op, Command):
            reply = await conn.execute_command(*op.args, **_target(conn, op))
            return True, _one(op, reply)
        if isinstance(op, Primaries):
            return True, _primaries(conn)
        if isinstance(op, Pipeline) and not _is_cluster(conn):
            plain = await plain_pipeline(conn, [c.args for c in op.commands])
            if plain is not None:
                return True, _replies(plain)
        before = _routes(conn, op)
        replies = _replies(await _pipeline(conn, op).execute(raise_on_error=False))
        if _lost_a_node(conn, replies):
            await conn.nodes_manager.initialize()  # type: ignore[union-attr]
        return True, _checked_waits(conn, op, before, replies)
    except _REDIS_ERRORS as exc:
        if _being_cancelled():
            # redis-py may report a cancelled read as a connection error: a cancellation
            # must stay a cancellation
            raise asyncio.CancelledError from exc
        error = translate_error(exc)
        if _lost_a_node(conn, [error]):
            with contextlib.suppress(*_REDIS_ERRORS):
                await conn.nodes_manager.initialize()  # type: ignore[union-attr]
        return False, error


def _argses(op: Command | Pipeline) -> list[tuple[Any, ...]]:
    return [op.args] if isinstance(op, Command) else [c.args for c in op.commands]


def _laned(op: Command | Pipeline, replies: list[Any]) -> Outcome:
    """What a lane's replies to ``op`` make: as ``execute_command`` or a pipeline has them."""
    if isinstance(op, Pipeline):
        return True, _replies(replies)
    if isinstance(replies[0], BaseException):
        raise replies[0]  # as execute_command raises it
    return True, replies[0]


def run_sync(
    conn: SyncRedis,
    gen: Gen[T],
    lane: SyncLane | None = None,
    closed: Callable[[], bool] | None = None,
) -> T:
    """Drive a protocol generator over a blocking redis-py client.

    With a ``lane`` (of that client), its commands go over the lane's connection when it
    can take them (see :class:`~jobwire.packing.SyncLane`). Once ``closed()`` is true no
    further op is sent: :class:`~jobwire.ClientClosed` is raised instead.
    """
    perform = functools.partial(_perform, conn, lane=lane)
    return drive(gen, perform if closed is None else guarded(perform, closed))


async def run_async(
    conn: AsyncRedis,
    gen: Gen[T],
    lane: Lane | None = None,
    closed: Callable[[], bool] | None = None,
) -> T:
    """Drive a protocol generator over an asyncio redis-py client (cancellation-safe).

    With a ``lane`` (of that client), its commands go over the lane's connection when it
    can take them (see :class:`~jobwire.packing.Lane`); ``closed`` as for :func:`run_sync`.
    """
    perform = functools.partial(_perform_async, conn, lane=lane)
    return await drive_async(gen, perform if closed is None else guarded_async(perform, closed))


def guarded(
    perform: Callable[[Op], Outcome], closed: Callable[[], bool]
) -> Callable[[Op], Outcome]:
    """``perform``, refusing each op once ``closed()``: the driver of a closed client.

    Checked before each op, never after: an op that Redis carried out is reported as such.
    """

    def perform_open(op: Op) -> Outcome:
        if closed():
            raise ClientClosed()
        return perform(op)

    return perform_open


def guarded_async(
    perform: Callable[[Op], Awaitable[Outcome]], closed: Callable[[], bool]
) -> Callable[[Op], Awaitable[Outcome]]:
    """The asyncio twin of :func:`guarded`."""

    async def perform_open(op: Op) -> Outcome:
        if closed():
            raise ClientClosed()
        return await perform(op)

    return perform_open
