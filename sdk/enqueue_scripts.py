"""The enqueue scripts: storing a job, checking its id, atomically (SPEC 12.3).

``enqueue`` and ``enqueue_once`` (the same, once per marker key: one cron run per scheduled
time) share ``enqueue_job``. Foreign producers call ``enqueue`` by its exact source, which
wire/SPEC.md and the Node.js example producer carry (a test keeps the three the same).
"""

from __future__ import annotations

from typing import Final

from .lua_events import EMIT
from .lua_jobs import ENVELOPE, INDEX, WAKE
from .lua_script import WRITES, Script, lua

__all__ = ["ENQUEUE", "ENQUEUE_ONCE"]

_ENQUEUE_FN: Final = (
    WAKE
    + EMIT
    + ENVELOPE
    + INDEX
    + """
-- whether this call was sent before (a retry after a lost reply): its token is the one stored
-- with the job, or, for a job stored without one (a call that sends none: its id is new, made
-- for it), its envelope is the stored one
local function sent_before(token, data, stored_token, stored_data)
  if stored_token and stored_token ~= '' then return stored_token == token end
  return token == '' and stored_data ~= nil and stored_data == data
end

-- log, fn, try0, cap: the event stream, the function, the envelope's try - 1 and the stream's
-- cap; without them (log nil) the job is stored without an event
local function enqueue_job(keys, argv, log, fn, try0, cap)
  local job, stream, deferred, wake = keys[1], keys[2], keys[3], keys[4]
  local results, done = keys[5], keys[6]
  local jid, data, due, expires, unique_results = argv[1], argv[2], argv[3], argv[4], argv[5]
  local token = argv[6]
  cap, try0 = tonumber(cap) or 0, tonumber(try0) or 0
  local events = log and cap > 0
  if redis.call('EXISTS', job) == 1 then
    local h = redis.call('HMGET', job, 'token', 'data', 'entry')
    if sent_before(token, data, h[1], h[2] or entry_data(stream, h[3])) then return 3 end
    return 0
  end
  -- the queue's base (P:{Q}:), when the job key is the usual one: then the job may be
  -- queued without a hash, in the index
  local base
  if string.sub(job, -#jid - 4) == 'job:' .. jid then base = string.sub(job, 1, -#jid - 5) end
  local indexed, bucket, stored_token
  if base then indexed, bucket, stored_token = indexed_entry(base, jid) end
  local fields = indexed and job_entry(stream, indexed, jid)
  if fields then
    if sent_before(token, data, stored_token, field(fields, 'data')) then return 3 end
    return 0
  elseif indexed then
    redis.call('HDEL', bucket, jid)  -- a field naming no entry of the job's holds nothing
  end
  if unique_results == '1' and redis.call('EXISTS', results) == 1 then return 0 end
  redis.call('DEL', done)
  -- a failed run's kept envelope (P:{Q}:failed:ID, beside the results key) is stale now
  local tail = 'results:' .. jid
  if string.sub(results, -#tail) == tail then
    redis.call('DEL', string.sub(results, 1, #results - #tail) .. 'failed:' .. jid)
  end
  local outcome, hashed = 1, true
  if due ~= '' then
    wake_if_earliest(deferred, wake, due)
    redis.call('ZADD', deferred, due, jid)
    redis.call('HSET', job, 'data', data, 'state', 'deferred')
    outcome = 2
  elseif base and expires == '' and try0 == 0 and #token <= 32 and not string.find(token, '%s') then
    -- the usual job needs no hash: the entry carries its envelope (and its function, for
    -- the started event), the index its entry id (and its call's token, short enough for
    -- the index to stay compact)
    local entry
    if events then
      entry = redis.call('XADD', stream, '*', 'job', jid, 'data', data, 'function', fn)
    else
      entry = redis.call('XADD', stream, '*', 'job', jid, 'data', data)
    end
    local value = entry
    if token ~= '' then value = entry .. ' ' .. token end
    hashed = type(redis.pcall('HSET', bucket, jid, value)) ~= 'number'
    if hashed then redis.call('HSET', job, 'state', 'queued', 'entry', entry) end
  else
    -- the envelope rides in the entry: the hash stays small enough for Redis's compact
    -- (listpack) encoding, which an envelope-sized value would rule out
    local entry = redis.call('XADD', stream, '*', 'job', jid, 'data', data)
    redis.call('HSET', job, 'state', 'queued', 'entry', entry)
  end
  if hashed and token ~= '' then redis.call('HSET', job, 'token', token) end
  if expires ~= '' then redis.call('PEXPIREAT', job, expires) end
  if events then
    if hashed then
      -- kept for the started event, which a worker writes without decoding the envelope
      redis.call('HSET', job, 'function', fn)
      if try0 > 0 then redis.call('HSET', job, 'try0', try0) end
    end
    emit(log, cap, 'enqueued', jid, fn, try0 + 1, '', '', due)
    trim_events()
  end
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
# optional: without them no event is written (foreign producers may leave them out)
_EVENT_KEY: Final = ("[lifecycle]",)
_EVENT_ARGV: Final = ("[function", "first_try - 1", "max_events]")

ENQUEUE = Script(
    "enqueue",
    keys=(*_ENQUEUE_KEYS, *_EVENT_KEY),
    argv=(*_ENQUEUE_ARGV, *_EVENT_ARGV),
    source=lua(
        WRITES,
        _ENQUEUE_FN,
        "\nreturn enqueue_job(KEYS, ARGV, KEYS[7], ARGV[7], ARGV[8], ARGV[9])\n",
    ),
)

ENQUEUE_ONCE = Script(
    "enqueue_once",
    keys=(*_ENQUEUE_KEYS, "once", *_EVENT_KEY),
    argv=(*_ENQUEUE_ARGV, "once_ttl_ms", *_EVENT_ARGV),
    source=lua(
        WRITES,
        _ENQUEUE_FN,
        """
-- the marker makes one enqueue per marker key (e.g. one cron run per scheduled time)
if not redis.call('SET', KEYS[7], '1', 'NX', 'PX', ARGV[7]) then return 0 end
return enqueue_job(KEYS, ARGV, KEYS[8], ARGV[8], ARGV[9], ARGV[10])
""",
    ),
)
