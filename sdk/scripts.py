"""The Lua scripts: every multi-key step of the queue, atomic on the server.

Each :class:`Script` lists its KEYS and ARGV; ``wire/SPEC.md`` (section 12) documents the same
names and a test keeps the two in agreement. Scripts are called with EVALSHA; on NOSCRIPT the
protocol core loads them and retries (see ``protocol.call_script``).

Scripts build per-job key names from ``base`` (``P:{Q}:``) inside Lua; all of them share the
queue's hash tag, so a script never leaves one Cluster slot.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

__all__ = ["SCRIPTS", "Script"]


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


# Shared pieces, concatenated into the scripts below (written once, used where needed).

_STORE_RESULT: Final = """
local function store_result(base, jid, result, keep_ms)
  local results = base .. 'results:' .. jid
  if keep_ms ~= 0 then
    if redis.call('LINDEX', results, 0) ~= result then
      redis.call('LPUSH', results, result)
      redis.call('LTRIM', results, 0, 9)
    end
    if keep_ms > 0 then
      redis.call('PEXPIRE', results, keep_ms)
    else
      redis.call('PERSIST', results)
    end
  end
end
local function signal_done(base, jid)
  local done = base .. 'done:' .. jid
  redis.call('DEL', done)
  redis.call('RPUSH', done, '1')
  redis.call('PEXPIRE', done, 60000)
end
"""

_WAKE: Final = """
local function wake_if_earliest(deferred, wake, due)
  local first = redis.call('ZRANGE', deferred, 0, 0, 'WITHSCORES')
  if first[2] == nil or tonumber(due) < tonumber(first[2]) then
    redis.call('XADD', wake, 'MAXLEN', '~', 100, '*', 'wake', due)
  end
end
"""

_START: Final = """
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
local function start_job(stream, group, consumer, session, base, now, entry, jid, out)
  local job = base .. 'job:' .. (jid or '')
  local h = jid and redis.call('HMGET', job, 'data', 'state', 'worker', 'session', 'entry',
                               'tries')
  if not (h and h[1]) then
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
    return
  end
  local tries
  if h[2] == 'active' and h[3] == consumer and h[4] == session and h[5] == entry then
    -- this worker process started it already: a call resent after its reply was lost, or
    -- a lease it let lapse while Redis was out of reach. Not a new try.
    tries = tonumber(h[6])
  else
    tries = redis.call('HINCRBY', job, 'tries', 1)
    redis.call('HSET', job, 'state', 'active', 'entry', entry, 'worker', consumer,
               'session', session, 'started_ms', now)
    redis.call('PERSIST', job)
  end
  out[#out + 1] = {entry, jid, h[1], tries}
end
"""

_ENQUEUE_FN: Final = (
    _WAKE
    + """
local function enqueue_job(keys, argv)
  local job, stream, deferred, wake = keys[1], keys[2], keys[3], keys[4]
  local results, done = keys[5], keys[6]
  local jid, data, due, expires, unique_results = argv[1], argv[2], argv[3], argv[4], argv[5]
  local token = argv[6]
  if redis.call('EXISTS', job) == 1 then
    if token ~= '' and redis.call('HGET', job, 'token') == token then return 3 end
    return 0
  end
  if unique_results == '1' and redis.call('EXISTS', results) == 1 then return 0 end
  redis.call('DEL', done)
  local outcome
  if due ~= '' then
    wake_if_earliest(deferred, wake, due)
    redis.call('ZADD', deferred, due, jid)
    redis.call('HSET', job, 'data', data, 'state', 'deferred', 'tries', 0, 'token', token)
    outcome = 2
  else
    local entry = redis.call('XADD', stream, '*', 'job', jid)
    redis.call('HSET', job, 'data', data, 'state', 'queued', 'entry', entry, 'tries', 0,
               'token', token)
    outcome = 1
  end
  if expires ~= '' then redis.call('PEXPIREAT', job, expires) end
  return outcome
end
"""
)
_ENQUEUE_KEYS: Final = ("job", "stream", "deferred", "wake", "results", "done")
_ENQUEUE_ARGV: Final = (
    "job_id",
    "data",
    "defer_until_ms or ''",
    "expires_ms or ''",
    "unique_results (1 or 0)",
    "call_token",
)

_PROMOTE: Final = """
local function promote_due(stream, deferred, base, now, limit)
  local due = redis.call('ZRANGEBYSCORE', deferred, '-inf', now, 'LIMIT', 0, limit)
  for _, jid in ipairs(due) do
    redis.call('ZREM', deferred, jid)
    local job = base .. 'job:' .. jid
    if redis.call('HGET', job, 'state') == 'deferred' then
      local entry = redis.call('XADD', stream, '*', 'job', jid)
      redis.call('HSET', job, 'state', 'queued', 'entry', entry)
    end
  end
  local nxt = redis.call('ZRANGE', deferred, 0, 0, 'WITHSCORES')
  return {#due, nxt[2] or '-1'}
end
"""

ENQUEUE = Script(
    "enqueue",
    keys=_ENQUEUE_KEYS,
    argv=_ENQUEUE_ARGV,
    source=_ENQUEUE_FN + "\nreturn enqueue_job(KEYS, ARGV)\n",
)

ENQUEUE_ONCE = Script(
    "enqueue_once",
    keys=(*_ENQUEUE_KEYS, "once"),
    argv=(*_ENQUEUE_ARGV, "once_ttl_ms"),
    source=_ENQUEUE_FN
    + """
-- the marker makes one enqueue per marker key (e.g. one cron run per scheduled time)
if not redis.call('SET', KEYS[7], '1', 'NX', 'PX', ARGV[7]) then return 0 end
return enqueue_job(KEYS, ARGV)
""",
)

REQUEUE = Script(
    "requeue",
    keys=("stream",),
    argv=("group", "base", "job_id", "entry_id"),
    source="""
local stream = KEYS[1]
local group, base, jid, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local job = base .. 'job:' .. jid
redis.call('XACK', stream, group, entry)
redis.call('XDEL', stream, entry)
if redis.call('HGET', job, 'entry') ~= entry then return 0 end
local new = redis.call('XADD', stream, '*', 'job', jid)
redis.call('HSET', job, 'state', 'queued', 'entry', new)
redis.call('HDEL', job, 'worker', 'started_ms')
redis.call('HINCRBY', job, 'tries', -1)
return 1
""",
)

FETCH = Script(
    "fetch",
    keys=("stream", "deferred"),
    argv=("group", "consumer", "session", "base", "now_ms", "count"),
    source=_START
    + _PROMOTE
    + """
local stream, deferred = KEYS[1], KEYS[2]
local group, consumer, session, base, now, count =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
-- due deferred jobs join the stream first, so a busy worker needs no separate promote call
local promoted = promote_due(stream, deferred, base, now, 1000)
local out = {promoted[2]}
local res = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count,
                       'STREAMS', stream, '>')
if res then
  for _, e in ipairs(res[1][2]) do
    start_job(stream, group, consumer, session, base, now, e[1], field(e[2], 'job'), out)
  end
end
return out
""",
)

START = Script(
    "start",
    keys=("stream",),
    argv=("group", "consumer", "session", "base", "now_ms", "entry_id job_id ..."),
    source=_START
    + """
local stream = KEYS[1]
local group, consumer, session, base, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local out = {}
for i = 6, #ARGV, 2 do
  start_job(stream, group, consumer, session, base, now, ARGV[i], ARGV[i + 1], out)
end
return out
""",
)

RECLAIM = Script(
    "reclaim",
    keys=("stream",),
    argv=("group", "consumer", "session", "base", "now_ms", "lease_ms", "count"),
    source=_START
    + """
local stream = KEYS[1]
local group, consumer, session, base, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local lease, count = ARGV[6], ARGV[7]
local out = {}
-- one XAUTOCLAIM looks at no more than 10 x COUNT pending entries: follow its cursor
-- through the whole pending list, or a small COUNT would only ever see live workers' jobs
local cursor = '0-0'
repeat
  local res = redis.call('XAUTOCLAIM', stream, group, consumer, lease, cursor,
                         'COUNT', count - #out)
  cursor = res[1]
  for _, e in ipairs(res[2]) do
    if e and e[2] then
      start_job(stream, group, consumer, session, base, now, e[1], field(e[2], 'job'), out)
    elseif e then
      redis.call('XACK', stream, group, e[1])
    end
  end
until cursor == '0-0' or #out >= tonumber(count)
return out
""",
)

RENEW = Script(
    "renew",
    keys=("stream",),
    argv=("group", "consumer", "base", "entry_id job_id ..."),
    source="""
local stream = KEYS[1]
local group, consumer, base = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV, 2 do
  local entry, jid = ARGV[i], ARGV[i + 1]
  local p = redis.call('XPENDING', stream, group, entry, entry, 1)
  if p[1] and p[1][2] == consumer then
    redis.call('XCLAIM', stream, group, consumer, 0, entry, 'JUSTID')
    if redis.call('HGET', base .. 'job:' .. jid, 'abort') == '1' then
      out[#out + 1] = 2
    else
      out[#out + 1] = 1
    end
  else
    out[#out + 1] = 0
  end
end
return out
""",
)

FINISH = Script(
    "finish",
    keys=("stream",),
    argv=("group", "base", "job_id entry_id result keep_ms (-1 forever, 0 none) ..."),
    source=_STORE_RESULT
    + """
local stream, group, base = KEYS[1], ARGV[1], ARGV[2]
for i = 3, #ARGV, 4 do
  local jid, entry, result, keep = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  redis.call('XACK', stream, group, entry)
  redis.call('XDEL', stream, entry)
  local job = base .. 'job:' .. jid
  if redis.call('HGET', job, 'entry') == entry then redis.call('DEL', job) end
  store_result(base, jid, result, keep)
  signal_done(base, jid)
end
return 1
""",
)

RETRY = Script(
    "retry",
    keys=("stream", "deferred", "wake"),
    argv=("group", "base", "job_id", "entry_id", "result", "keep_ms", "due_ms or ''"),
    source=_STORE_RESULT
    + _WAKE
    + """
local stream, deferred, wake = KEYS[1], KEYS[2], KEYS[3]
local group, base, jid, entry, result = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local keep, due = tonumber(ARGV[6]), ARGV[7]
redis.call('XACK', stream, group, entry)
redis.call('XDEL', stream, entry)
local job = base .. 'job:' .. jid
if redis.call('HGET', job, 'entry') ~= entry then return 0 end
store_result(base, jid, result, keep)
redis.call('HDEL', job, 'worker', 'started_ms')
if due ~= '' then
  wake_if_earliest(deferred, wake, due)
  redis.call('ZADD', deferred, due, jid)
  redis.call('HDEL', job, 'entry')
  redis.call('HSET', job, 'state', 'deferred')
else
  local new = redis.call('XADD', stream, '*', 'job', jid)
  redis.call('HSET', job, 'state', 'queued', 'entry', new)
end
return 1
""",
)

PROMOTE = Script(
    "promote",
    keys=("stream", "deferred"),
    argv=("base", "now_ms", "limit"),
    source=_PROMOTE
    + """
local stream, deferred = KEYS[1], KEYS[2]
return promote_due(stream, deferred, ARGV[1], ARGV[2], ARGV[3])
""",
)

ABORT = Script(
    "abort",
    keys=("job", "stream", "deferred"),
    argv=("group", "base", "job_id", "result", "keep_ms"),
    source=_STORE_RESULT
    + """
local job, stream, deferred = KEYS[1], KEYS[2], KEYS[3]
local group, base, jid, result, keep = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local state = redis.call('HGET', job, 'state')
if not state then
  -- a resent call whose first run removed the job finds the result it stored itself
  if redis.call('LINDEX', base .. 'results:' .. jid, 0) == result then return 1 end
  return 0
end
if state == 'active' then
  redis.call('HSET', job, 'abort', '1')
  redis.call('PUBLISH', base .. 'events', 'abort ' .. jid)
  return 2
end
if state == 'queued' then
  local entry = redis.call('HGET', job, 'entry')
  if entry then
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
  end
else
  redis.call('ZREM', deferred, jid)
end
redis.call('DEL', job)
store_result(base, jid, result, keep)
signal_done(base, jid)
return 1
""",
)

DEAD_LETTER = Script(
    "dead_letter",
    keys=("stream", "dead"),
    argv=(
        "group",
        "base",
        "entry_id or ''",
        "job_id or ''",
        "reason",
        "message",
        "raw",
        "now_ms",
        "max_entries",
        "result or ''",
        "keep_ms",
    ),
    source=_STORE_RESULT
    + """
local stream, dead = KEYS[1], KEYS[2]
local group, base, entry, jid, reason, message, raw, now, cap, result, keep =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9],
  ARGV[10], tonumber(ARGV[11])
if entry ~= '' then
  -- not pending any more: settled already (by this call, resent after its reply was lost,
  -- or by another worker), so it is not recorded twice
  if redis.call('XACK', stream, group, entry) == 0 then return '' end
  redis.call('XDEL', stream, entry)
end
local id = redis.call('XADD', dead, 'MAXLEN', cap, '*', 'job_id', jid, 'reason', reason,
                      'message', message, 'data', raw, 'at_ms', now)
if jid ~= '' then
  local job = base .. 'job:' .. jid
  if entry == '' or redis.call('HGET', job, 'entry') == entry then redis.call('DEL', job) end
  if result ~= '' then
    store_result(base, jid, result, keep)
    signal_done(base, jid)
  end
end
return id
""",
)

QUEUE_SIZE = Script(
    "queue_size",
    keys=("stream", "deferred"),
    argv=("group",),
    source="""
local stream, deferred, group = KEYS[1], KEYS[2], ARGV[1]
local pending = 0
local p = redis.pcall('XPENDING', stream, group)
if type(p) == 'table' and not p.err then pending = p[1] end
return {redis.call('XLEN', stream) - pending, redis.call('ZCARD', deferred), pending}
""",
)

LIST_JOBS = Script(
    "list_jobs",
    keys=("stream", "deferred"),
    argv=("group", "base", "limit"),
    source="""
local stream, deferred = KEYS[1], KEYS[2]
local group, base, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local last = '0-0'
local groups = redis.pcall('XINFO', 'GROUPS', stream)
if type(groups) == 'table' and not groups.err then
  for _, g in ipairs(groups) do
    local name, delivered
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] end
      if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
    end
    if name == group then last = delivered end
  end
end
local out = {}
for _, e in ipairs(redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', limit)) do
  local jid = e[2][2]
  local data = redis.call('HGET', base .. 'job:' .. jid, 'data')
  if data then out[#out + 1] = {'queued', data} end
end
for _, jid in ipairs(redis.call('ZRANGE', deferred, 0, limit - 1)) do
  local data = redis.call('HGET', base .. 'job:' .. jid, 'data')
  if data then out[#out + 1] = {'deferred', data} end
end
return out
""",
)

#: Every script by name.
_ALL: Final = (ENQUEUE, ENQUEUE_ONCE, FETCH, START, RECLAIM, RENEW, FINISH, RETRY, REQUEUE)
SCRIPTS: Final[dict[str, Script]] = {
    s.name: s for s in (*_ALL, PROMOTE, ABORT, DEAD_LETTER, QUEUE_SIZE, LIST_JOBS)
}
