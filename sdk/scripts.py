"""The Lua scripts: every multi-key step of the queue, atomic on the server.

Each :class:`Script` lists its KEYS and ARGV; ``wire/SPEC.md`` (section 12) documents the same
names and a test keeps the two in agreement. Scripts are called with EVALSHA; on NOSCRIPT the
protocol core loads them and retries (see ``protocol.call_script``).

Scripts build per-job key names from ``base`` (``P:{Q}:``) inside Lua; all of them share the
queue's hash tag, so a script never leaves one Cluster slot.

Every script starts with a Redis 7 shebang, so that Redis knows up front what it may do: a
script that writes is refused whole under out-of-memory (``maxmemory`` with ``noeviction``)
rather than stopped after a partial write (a script without a shebang is checked only at its
first write, and ``DEL`` passes that check), except ``renew`` (``allow-oom``: a running job
must keep its lease, or it would run twice); read-only scripts are ``no-writes``.

What a script reads from Redis is untrusted: a malformed job or entry is reported alone
(``redis.pcall`` where a read can fail), never failing the call for the others.
"""

from __future__ import annotations

from typing import Final

from .enqueue_scripts import ENQUEUE, ENQUEUE_ONCE
from .lua_events import EMIT, JOB_EVENTS_SOURCE, PROGRESS_SOURCE, TALLY
from .lua_jobs import ENVELOPE, FIELD, INDEX, PROMOTE_DUE, STORE_RESULT, WAKE
from .lua_script import ALLOW_OOM, NO_WRITES, WRITES, Script, lua
from .start_scripts import FETCH, RECLAIM, START, START_DELIVERED

__all__ = ["SCRIPTS", "Script"]

# what a job's result outcome makes of its lifecycle event
_EVENT_TYPES: Final = """
local EVENT_TYPES = {success = 'succeeded', error = 'failed', timeout = 'failed',
                     aborted = 'aborted'}
"""

REQUEUE = Script(
    "requeue",
    keys=("stream",),
    argv=("group", "base", "job_id", "entry_id"),
    source=lua(
        WRITES,
        ENVELOPE,
        """
local stream = KEYS[1]
local group, base, jid, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local job = base .. 'job:' .. jid
local ours, data = settle_entry(stream, group, job, entry)
if not ours then return 0 end
queue_entry(stream, job, jid, data)
redis.call('HDEL', job, 'worker', 'started_ms', 'progress')
redis.call('HINCRBY', job, 'tries', -1)
return 1
""",
    ),
)

RENEW = Script(
    "renew",
    keys=("stream",),
    argv=("group", "consumer", "base", "entry_id job_id ..."),
    source=lua(
        ALLOW_OOM,
        """
local stream = KEYS[1]
local group, consumer, base = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV, 2 do
  local entry, jid = ARGV[i], ARGV[i + 1]
  local p = redis.pcall('XPENDING', stream, group, entry, entry, 1)
  if p.err or not p[1] then
    -- pending for no one: the job was settled meanwhile (finished, retried, dead-lettered)
    out[#out + 1] = 3
  elseif p[1][2] ~= consumer then
    out[#out + 1] = 0  -- the lease ran out and another consumer took the job
  else
    redis.call('XCLAIM', stream, group, consumer, 0, entry, 'JUSTID')
    if redis.pcall('HGET', base .. 'job:' .. jid, 'abort') == '1' then
      out[#out + 1] = 2
    else
      out[#out + 1] = 1
    end
  end
end
return out
""",
    ),
)

FINISH = Script(
    "finish",
    keys=("stream",),
    argv=(
        "group",
        "base",
        "worker",
        "now_ms",
        "max_events",
        "job_id entry_id result keep_ms (-1 forever, 0 none) function try outcome duration_ms "
        "bucket error ...",
    ),
    source=lua(
        WRITES,
        STORE_RESULT,
        ENVELOPE,
        EMIT,
        TALLY,
        _EVENT_TYPES,
        """
local stream, group, base, worker, now = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local cap = tonumber(ARGV[5]) or 0
for i = 6, #ARGV, 10 do
  local jid, entry, result, keep = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local acked = redis.call('XACK', stream, group, entry)
  local job = base .. 'job:' .. jid
  local h = redis.call('HMGET', job, 'entry', 'data')
  if h[1] == entry then
    local outcome, data = ARGV[i + 6], h[2]
    -- the envelope is read (from the entry, before it goes) only when it is to be kept
    if not data and keep ~= 0 and outcome ~= '' and outcome ~= 'success' then
      data = entry_data(stream, entry)
    end
    redis.call('DEL', job)
    keep_failed(base, jid, data, outcome, keep)
  end
  redis.call('XDEL', stream, entry)
  store_result(base, jid, result, keep)
  signal_done(base, jid)
  -- recorded once: a resent call finds the entry acknowledged already
  if acked == 1 and cap > 0 and ARGV[i + 6] ~= '' then
    local fn, outcome, ms = ARGV[i + 4], ARGV[i + 6], ARGV[i + 7]
    emit(base .. 'lifecycle', cap, EVENT_TYPES[outcome] or 'failed', jid, fn, ARGV[i + 5],
         worker, ms, ARGV[i + 9])
    count(fn, outcome, ARGV[i + 8], ms)
  end
end
flush_tally(base, now)
trim_events()
return 1
""",
    ),
)

RETRY = Script(
    "retry",
    keys=("stream", "deferred", "wake"),
    argv=(
        "group",
        "base",
        "job_id",
        "entry_id",
        "result",
        "keep_ms",
        "due_ms or ''",
        "worker",
        "now_ms",
        "max_events",
        "function",
        "try",
        "duration_ms",
        "bucket",
        "error",
    ),
    source=lua(
        WRITES,
        STORE_RESULT,
        WAKE,
        ENVELOPE,
        EMIT,
        TALLY,
        """
local stream, deferred, wake = KEYS[1], KEYS[2], KEYS[3]
local group, base, jid, entry, result = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local keep, due = tonumber(ARGV[6]), ARGV[7]
local job = base .. 'job:' .. jid
local ours, data = settle_entry(stream, group, job, entry)
if not ours then return 0 end
store_result(base, jid, result, keep)
if (tonumber(ARGV[10]) or 0) > 0 then
  emit(base .. 'lifecycle', tonumber(ARGV[10]), 'retried', jid, ARGV[11], ARGV[12], ARGV[8],
       ARGV[13], ARGV[15])
  count(ARGV[11], 'retried', ARGV[14], ARGV[13])
  flush_tally(base, ARGV[9])
  trim_events()
end
redis.call('HDEL', job, 'worker', 'started_ms', 'progress')
if due ~= '' then
  wake_if_earliest(deferred, wake, due)
  redis.call('ZADD', deferred, due, jid)
  redis.call('HDEL', job, 'entry')
  redis.call('HSET', job, 'state', 'deferred')
  if data then redis.call('HSET', job, 'data', data) end
else
  queue_entry(stream, job, jid, data)
end
return 1
""",
    ),
)

HAND_BACK = Script(
    "hand_back",
    keys=("stream", "deferred", "wake"),
    argv=(
        "group",
        "consumer",
        "base",
        "job_id",
        "entry_id",
        "now_ms",
        "base_delay_ms",
        "max_delay_ms",
        "grace_ms",
    ),
    source=lua(
        WRITES,
        WAKE,
        ENVELOPE,
        """
local stream, deferred, wake = KEYS[1], KEYS[2], KEYS[3]
local group, consumer, base, jid, entry = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, base_delay, max_delay, grace =
  tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local p = redis.pcall('XPENDING', stream, group, entry, entry, 1)
-- settled already, or another consumer's since its lease ran out: not ours to touch
if p.err or not p[1] or p[1][2] ~= consumer then return 0 end
local job = base .. 'job:' .. jid
local h = redis.pcall('HMGET', job, 'entry', 'handed_back_ms', 'handbacks', 'tries', 'data')
if h.err or h[1] ~= entry then
  redis.call('XACK', stream, group, entry)
  redis.call('XDEL', stream, entry)
  return 0
end
local first = tonumber(h[2])
if not first then
  first = now
  redis.call('HSET', job, 'handed_back_ms', now)
end
-- left pending: the caller dead-letters it with this delivery, which acknowledges it
if now - first >= grace then return 2 end
local n = (tonumber(h[3]) or 0) + 1
-- deferred, the job keeps its envelope in its hash
local data = h[5] or entry_data(stream, entry)
if data then redis.call('HSET', job, 'data', data) end
redis.call('XACK', stream, group, entry)
redis.call('XDEL', stream, entry)
local due = string.format('%d', now + math.floor(math.min(base_delay * 2 ^ (n - 1), max_delay)))
wake_if_earliest(deferred, wake, due)
redis.call('ZADD', deferred, due, jid)
-- the start is undone: it does not count as a try
redis.call('HSET', job, 'state', 'deferred', 'handbacks', n,
           'tries', math.max((tonumber(h[4]) or 1) - 1, 0))
redis.call('HDEL', job, 'worker', 'started_ms', 'entry', 'progress')
return 1
""",
    ),
)

PROMOTE = Script(
    "promote",
    keys=("stream", "deferred", "dead"),
    argv=("base", "now_ms", "limit", "max_dead_entries"),
    source=lua(
        WRITES,
        ENVELOPE,
        PROMOTE_DUE,
        """
local stream, deferred, dead = KEYS[1], KEYS[2], KEYS[3]
return promote_due(stream, deferred, dead, ARGV[1], ARGV[2], ARGV[3], ARGV[4])
""",
    ),
)

ABORT = Script(
    "abort",
    keys=("job", "stream", "deferred"),
    argv=("group", "base", "job_id", "result", "keep_ms", "now_ms", "max_events", "function"),
    source=lua(
        WRITES,
        STORE_RESULT,
        ENVELOPE,
        INDEX,
        EMIT,
        TALLY,
        """
local job, stream, deferred = KEYS[1], KEYS[2], KEYS[3]
local group, base, jid, result, keep = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local state = redis.call('HGET', job, 'state')
local indexed, bucket
if not state then indexed, bucket = indexed_entry(base, jid) end
if indexed then
  state = 'queued'  -- queued without a hash (SPEC 12.1)
  redis.call('HDEL', bucket, jid)
end
if not state then
  -- a resent call whose first run removed the job finds the result it stored itself
  if redis.call('LINDEX', base .. 'results:' .. jid, 0) == result then return 1 end
  return 0
end
if state == 'active' then
  redis.call('HSET', job, 'abort', '1')
  redis.call('SPUBLISH', base .. 'events', 'abort ' .. jid)
  return 2
end
local h = indexed and {indexed} or redis.call('HMGET', job, 'entry', 'data')
local data = h[2]
if state == 'queued' then
  -- (an entry id read from the hash or the index is untrusted: only the job's own goes)
  local fields = h[1] and job_entry(stream, h[1], jid)
  if fields then
    data = data or field(fields, 'data')
    redis.call('XACK', stream, group, h[1])
    redis.call('XDEL', stream, h[1])
  end
else
  redis.call('ZREM', deferred, jid)
end
keep_failed(base, jid, data, 'aborted', keep)
redis.call('DEL', job)
store_result(base, jid, result, keep)
signal_done(base, jid)
local cap = tonumber(ARGV[7]) or 0
if cap > 0 then
  emit(base .. 'lifecycle', cap, 'aborted', jid, ARGV[8], '', '', '', 'aborted before it started')
  count(ARGV[8], 'aborted', '', 0)
  flush_tally(base, ARGV[6])
  trim_events()
end
return 1
""",
    ),
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
        "worker",
        "max_events",
        "function",
        "try",
    ),
    source=lua(
        WRITES,
        STORE_RESULT,
        ENVELOPE,
        EMIT,
        TALLY,
        """
local stream, dead = KEYS[1], KEYS[2]
local group, base, entry, jid, reason, message, raw, now, cap, result, keep =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9],
  ARGV[10], tonumber(ARGV[11])
local key_id, held_data = jid, nil
if entry ~= '' then
  -- the job id as the entry holds it: a caller's copy of an id that is not UTF-8 is escaped
  local e = redis.call('XRANGE', stream, entry, entry)
  local held = e[1] and e[1][2] and field(e[1][2], 'job')
  if held and held ~= '' and jid ~= '' then key_id = held end
  held_data = e[1] and e[1][2] and field(e[1][2], 'data')
  -- not pending any more: settled already (by this call, resent after its reply was lost,
  -- or by another worker), so it is not recorded twice
  if redis.call('XACK', stream, group, entry) == 0 then return '' end
  redis.call('XDEL', stream, entry)
end
local id = redis.call('XADD', dead, 'MAXLEN', cap, '*', 'job_id', jid, 'reason', reason,
                      'message', message, 'data', raw, 'at_ms', now)
local events = tonumber(ARGV[13]) or 0
if events > 0 then
  emit(base .. 'lifecycle', events, 'dead_lettered', jid, ARGV[14], ARGV[15], ARGV[12], '',
       reason .. ': ' .. string.sub(message, 1, 200))
  count(ARGV[14], 'dead_lettered', '', 0)
  flush_tally(base, now)
  trim_events()
end
if key_id ~= '' then
  local job = base .. 'job:' .. key_id
  local h = redis.pcall('HMGET', job, 'data', 'entry')
  local real = not h.err and (h[1] or (h[2] == entry and held_data) or entry_data(stream, h[2]))
  if not real then
    -- not a job (no hash, or one with no envelope): nothing to keep (the key is ours)
    redis.call('DEL', job)
  elseif entry == '' or h[2] == entry then
    -- only a real job gets a result: a stray entry leaves no results or done keys behind
    redis.call('DEL', job)
    if result ~= '' then
      store_result(base, key_id, result, keep)
      signal_done(base, key_id)
    end
  end
end
return id
""",
    ),
)

QUEUE_SIZE = Script(
    "queue_size",
    keys=("stream", "deferred"),
    argv=("group",),
    source=lua(
        NO_WRITES,
        """
local stream, deferred, group = KEYS[1], KEYS[2], ARGV[1]
local pending = 0
local p = redis.pcall('XPENDING', stream, group)
if type(p) == 'table' and not p.err then pending = p[1] end
return {redis.call('XLEN', stream) - pending, redis.call('ZCARD', deferred), pending}
""",
    ),
)

LIST_JOBS = Script(
    "list_jobs",
    keys=("stream", "deferred"),
    argv=("group", "base", "limit"),
    source=lua(
        NO_WRITES,
        FIELD,
        INDEX,
        """
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
-- a job key of the wrong type is skipped, not an error for the whole listing
local out = {}
for _, e in ipairs(redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', limit)) do
  local jid = field(e[2], 'job')
  local h = jid and redis.pcall('HMGET', base .. 'job:' .. jid, 'data', 'state')
  -- a job whose hash is gone (aborted, expired) is not listed, unless it is queued without
  -- one (in the index, at this entry)
  if h and not h.err and (h[1] or h[2] or indexed_entry(base, jid) == e[1]) then
    local data = h[1] or field(e[2], 'data')
    if data then out[#out + 1] = {'queued', data} end
  end
end
for _, jid in ipairs(redis.call('ZRANGE', deferred, 0, limit - 1)) do
  local data = redis.pcall('HGET', base .. 'job:' .. jid, 'data')
  if type(data) == 'string' then out[#out + 1] = {'deferred', data} end
end
return out
""",
    ),
)

PROGRESS = Script(
    "progress",
    keys=("lifecycle",),
    argv=("base", "worker", "max_events", "job_id entry_id function try progress_json ..."),
    source=lua(WRITES, EMIT, PROGRESS_SOURCE),
)

JOB_EVENTS = Script(
    "job_events",
    keys=("lifecycle",),
    argv=("job_id", "chunk"),
    source=lua(NO_WRITES, FIELD, JOB_EVENTS_SOURCE),
)

#: Every script by name.
_ALL: Final = (
    ENQUEUE, ENQUEUE_ONCE, FETCH, START, START_DELIVERED, RECLAIM, RENEW, FINISH, RETRY, REQUEUE,
)  # fmt: skip
SCRIPTS: Final[dict[str, Script]] = {
    s.name: s
    for s in (
        *_ALL, HAND_BACK, PROMOTE, ABORT, DEAD_LETTER, QUEUE_SIZE, LIST_JOBS, PROGRESS,
        JOB_EVENTS,
    )
}  # fmt: skip
