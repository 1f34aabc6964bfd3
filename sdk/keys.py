"""Redis key names: the single place they are spelled (mirrored in wire/SPEC.md, section 12).

Every key of a queue shares the hash tag ``{queue}``, so one queue lives in one Redis Cluster
slot and every Lua script touches a single slot. The one key outside any queue, the registry
:func:`queues_key`, is only ever used alone (``SADD``/``SMEMBERS``), so it may live in any
slot. A queue spread over partitions would be several queues, each with its own tag.
"""

from __future__ import annotations

import hashlib
import os
from typing import Final

from jobwire.wire.fields import MAX_NAME_LENGTH

from . import defaults
from .errors import InvalidArgument

__all__ = [
    "ACL_COMMANDS",
    "CONSUMER_GROUP",
    "DEFAULT_PREFIX",
    "QueueKeys",
    "acl_rule",
    "check_job_id",
    "check_name",
    "new_job_id",
    "queues_key",
]

DEFAULT_PREFIX: Final = defaults.PREFIX
#: The consumer group every worker of a queue reads the stream with.
CONSUMER_GROUP: Final = "workers"


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it can be part of a key (a prefix, a queue name).

    Raises :class:`~jobwire.InvalidArgument` for anything but a non-empty string without
    ``{`` and ``}`` (they mark a key's hash tag), white space or control characters (a name
    is read in logs and listings, where ``a b`` would look like two names).
    """
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"{kind} must be a non-empty string, not {name!r:.40}")
    if "{" in name or "}" in name:
        raise InvalidArgument(f"{kind} {name!r} must not contain '{{' or '}}' (used for hash tags)")
    if not name.isprintable() or any(ch.isspace() for ch in name):
        raise InvalidArgument(
            f"{kind} {name!r:.60} must not contain white space or control characters"
        )
    return name


def new_job_id() -> str:
    """A fresh job id: a random (version 4) UUID in 32 hex digits, as ``uuid4().hex``.

    Made from the bytes directly: ``uuid.uuid4()`` builds an object for it, a few
    microseconds of every enqueue.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` if it can name a job, else raise :class:`~jobwire.InvalidArgument`.

    A job id is a non-empty string of at most 1024 characters (what every reader accepts),
    valid Unicode text (encodable as UTF-8).
    """
    if not isinstance(job_id, str) or not 0 < len(job_id) <= MAX_NAME_LENGTH:
        raise InvalidArgument(
            f"a job id must be a string of 1 to {MAX_NAME_LENGTH} characters, not {job_id!r:.40}"
        )
    if not job_id.isascii():
        try:
            job_id.encode()
        except UnicodeEncodeError:  # a lone surrogate: no key can be spelled with it
            message = f"a job id must be valid Unicode text, not {job_id!r:.40}"
            raise InvalidArgument(message) from None
    return job_id


def queues_key(prefix: str) -> str:
    """Set of the names of every queue that has been enqueued to (advisory, for listings).

    No hash tag: on a cluster it lives in the slot of its own name, and no command or
    script uses it together with another key (its ``SADD`` shares a pipeline with an
    enqueue, and a cluster pipeline sends each command to its own slot's master).
    """
    return f"{prefix}:queues"


class QueueKeys:
    """Key names of one queue under one prefix.

    ==================  =======  ======================================================
    key                 type     holds
    ==================  =======  ======================================================
    P:{Q}:job:ID        hash     ``data`` (envelope), ``state``, ``entry``, ``tries``,
                                 ``worker``, ``started_ms``, ``abort``,
                                 ``function``, ``progress``
    P:{Q}:stream        stream   one entry ``job ID`` per ready job; group ``workers``
    P:{Q}:wake          stream   ``wake DUE_MS`` markers: a deferred job became earliest
    P:{Q}:deferred      zset     ID scored by the time it may start (ms)
    P:{Q}:results:ID    list     result envelopes of the latest 10 executions, newest first
    P:{Q}:done:ID       list     one token once the job has a final result (waiters block)
    P:{Q}:failed:ID     string   the envelope of a job that ended other than in success,
                                 kept as long as its results (``Job.retry``)
    P:{Q}:dead          stream   dead-letter entries, capped
    P:{Q}:events        channel  ``abort ID`` notices for workers (sharded pub/sub)
    P:{Q}:lifecycle     stream   lifecycle events of the queue's jobs, capped
    P:{Q}:stats:m:N     hash     counts and durations of minute N (ms // 60000), expiring
    P:{Q}:stats:h:N     hash     the same for hour N (ms // 3600000), expiring
    P:{Q}:once:NAME     string   marker of an ``enqueue_once`` (a cron run), expiring
    P:{Q}:health:W      string   worker W's health record (JSON), expiring
    P:{Q}:paused        string   present while the queue is paused (workers take nothing)
    ==================  =======  ======================================================
    """

    __slots__ = ("base", "dead", "deferred", "events", "lifecycle", "paused", "queue", "stream",
                 "wake")  # fmt: skip

    def __init__(self, prefix: str, queue: str) -> None:
        check_name("prefix", prefix)
        self.queue = check_name("queue name", queue)
        self.base = f"{prefix}:{{{queue}}}:"
        self.stream = self.base + "stream"
        self.wake = self.base + "wake"
        self.deferred = self.base + "deferred"
        self.dead = self.base + "dead"
        self.events = self.base + "events"
        self.lifecycle = self.base + "lifecycle"
        self.paused = self.base + "paused"

    def job(self, job_id: str) -> str:
        """The job's state hash."""
        return self.base + "job:" + job_id

    def index(self, job_id: str) -> str:
        """The index bucket that holds the job while it is queued without a hash.

        One of 256 small hashes (id → stream entry id), chosen by the first two hex digits of
        the id's SHA1: a queued job that needs no hash of its own costs far less memory.
        """
        digest = hashlib.sha1(job_id.encode()).hexdigest()
        return self.base + "queued:" + digest[:2]

    def results(self, job_id: str) -> str:
        """The job's result history list."""
        return self.base + "results:" + job_id

    def done(self, job_id: str) -> str:
        """The job's completion token list."""
        return self.base + "done:" + job_id

    def failed(self, job_id: str) -> str:
        """The envelope of the job's latest run, kept while it ended other than in success."""
        return self.base + "failed:" + job_id

    def once(self, name: str) -> str:
        """Marker of one ``enqueue_once`` call."""
        return self.base + "once:" + name

    def health(self, worker: str) -> str:
        """A worker's health record."""
        return self.base + "health:" + worker

    def stats(self, resolution: str, start_ms: int) -> str:
        """The stats hash of the minute or hour (``resolution``) starting at ``start_ms``."""
        if resolution == "minute":
            return f"{self.base}stats:m:{start_ms // 60_000}"
        return f"{self.base}stats:h:{start_ms // 3_600_000}"


#: Every command jobwire's clients, workers and Lua scripts send (scripts run with the
#: caller's permissions, so their commands count too). Nothing else is needed.
ACL_COMMANDS: Final = (
    # clients and workers
    "ping", "evalsha", "script|load", "hget", "hmget", "exists", "lindex", "lrange",
    "blmove", "mget", "set", "sadd", "smembers", "scan", "xgroup|create", "xreadgroup",
    "xrange", "xrevrange", "xlen", "xack", "xdel", "ssubscribe", "sunsubscribe",
    # event and stats readers
    "xread", "hgetall",
    # workers: INFO memory (is Redis set to refuse writes when full?) and TIME (clock offset)
    # clients with RedisSettings(wait_replicas=N): WAIT
    "info", "time", "wait",
    # inside the Lua scripts
    "del", "hdel", "hincrby", "hset", "lpush", "ltrim", "rpush", "persist", "pexpire",
    "pexpireat", "pexpiretime", "spublish", "xadd", "xautoclaim", "xclaim", "xinfo|groups",
    "xpending", "xtrim", "zadd", "zcard", "zrange", "zrangebyscore", "zrem",
)  # fmt: skip


def acl_rule(prefix: str = DEFAULT_PREFIX) -> str:
    """The least an ACL user needs to use jobwire under ``prefix``.

    Its keys, its channels and the commands in :data:`ACL_COMMANDS`, nothing more.

    >>> f"ACL SETUSER app on >secret {acl_rule()}"  # doctest: +ELLIPSIS
    'ACL SETUSER app on >secret resetkeys ~jobwire:* resetchannels &jobwire:* -@all +ping ...'
    """
    check_name("prefix", prefix)
    commands = " ".join(f"+{c}" for c in ACL_COMMANDS)
    return f"resetkeys ~{prefix}:* resetchannels &{prefix}:* -@all {commands}"
