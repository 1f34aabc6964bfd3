"""The Lua pieces the job scripts share (used by ``scripts``).

Storing results, finding a job's envelope and moving it with the job, starting jobs and
promoting deferred ones. Each is Lua source, concatenated into the scripts that need it
(written once, used where needed); what they read from Redis is untrusted, as in every
script. See wire/SPEC.md, section 12.
"""

from __future__ import annotations

from typing import Final

from . import defaults
from .lua_events import EMIT

__all__ = ["ENVELOPE", "FIELD", "INDEX", "PROMOTE_DUE", "START_JOB", "STORE_RESULT", "WAKE"]

STORE_RESULT: Final = f"""
local function store_result(base, jid, result, keep_ms)
  local results = base .. 'results:' .. jid
  if keep_ms ~= 0 then
    if redis.call('LINDEX', results, 0) ~= result and
        redis.call('LPUSH', results, result) > {defaults.HISTORY} then
      redis.call('LTRIM', results, 0, {defaults.HISTORY - 1})
    end
    if keep_ms > 0 then
      redis.call('PEXPIRE', results, keep_ms)
    else
      redis.call('PERSIST', results)
    end
  end
end
-- a job that ended other than in success keeps its envelope as long as its results, so that
-- it can be retried (SPEC 12.1); any other end removes an older copy
local function keep_failed(base, jid, data, outcome, keep_ms)
  local failed = base .. 'failed:' .. jid
  if keep_ms == 0 or not data or outcome == '' or outcome == 'success' then
    redis.call('DEL', failed)
  elseif keep_ms > 0 then
    redis.call('SET', failed, data, 'PX', keep_ms)
  else
    redis.call('SET', failed, data)
  end
end
-- exactly one token, whatever the key held (an earlier token of the id, another type)
local function signal_done(base, jid)
  local done = base .. 'done:' .. jid
  local n = redis.pcall('RPUSH', done, '1')
  if type(n) ~= 'number' then
    redis.call('DEL', done)
    redis.call('RPUSH', done, '1')
  elseif n > 1 then
    redis.call('LTRIM', done, -1, -1)
  end
  redis.call('PEXPIRE', done, 60000)
end
"""

WAKE: Final = """
local function wake_if_earliest(deferred, wake, due)
  local first = redis.call('ZRANGE', deferred, 0, 0, 'WITHSCORES')
  if first[2] == nil or tonumber(due) < tonumber(first[2]) then
    redis.call('XADD', wake, 'MAXLEN', '~', 100, '*', 'wake', due)
  end
end
"""

FIELD: Final = """
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
"""

# A queued job that needs no hash (SPEC 12.1: enqueued to start now, no expiry, first try) has
# none: its id and entry id are a field of one of the queue's 256 index buckets,
# P:{Q}:queued:XX (XX: the first two hex digits of the SHA1 of the id), hashes small enough
# for Redis's compact encoding. A bucket of the wrong type holds nothing.
INDEX: Final = """
-- the job's entry id in the index (nil: none there), the key of its bucket and the call token
-- the field holds after the entry id ('ENTRY' or 'ENTRY TOKEN')
local function indexed_entry(base, jid)
  local bucket = base .. 'queued:' .. string.sub(redis.sha1hex(jid), 1, 2)
  local at = redis.pcall('HGET', bucket, jid)
  if type(at) ~= 'string' then return nil, bucket, nil end
  local entry, token = string.match(at, '^(%S+) (%S+)$')
  if entry then return entry, bucket, token end
  return at, bucket, nil
end
"""

# Where a job's envelope is (SPEC 12.1): a queued or running job's in its stream entry
# (`job ID data ENVELOPE`), a deferred one's in its hash; a hash `data` (what plain-command
# producers write, and every job had before) is read first wherever both could be. The entry
# id comes from the hash: untrusted.
ENVELOPE: Final = (
    FIELD
    + """
local function entry_fields(stream, entry)
  if not entry then return nil end
  local e = redis.pcall('XRANGE', stream, entry, entry)
  if e.err or not e[1] or type(e[1][2]) ~= 'table' then return nil end
  return e[1][2]
end
local function entry_data(stream, entry)
  local fields = entry_fields(stream, entry)
  return fields and field(fields, 'data')
end
-- the fields of entry `at` if it exists and is job jid's, else nil (an entry id read from a
-- hash or the index is untrusted)
local function job_entry(stream, at, jid)
  local fields = entry_fields(stream, at)
  if fields and field(fields, 'job') == jid then return fields end
  return nil
end
-- acknowledges and deletes the entry a job ran from; returns whether the job was still at it
-- and, if so, its envelope (from the hash, or read from the entry before the entry goes)
local function settle_entry(stream, group, job, entry)
  redis.call('XACK', stream, group, entry)
  local h = redis.call('HMGET', job, 'entry', 'data')
  local ours = h[1] == entry
  local data = ours and (h[2] or entry_data(stream, entry)) or nil
  redis.call('XDEL', stream, entry)
  return ours, data
end
-- puts a job on the stream with its envelope (data nil: an entry without one, which the
-- worker dead-letters as bad_field) and moves the envelope out of its hash
local function queue_entry(stream, job, jid, data)
  local entry
  if data then
    entry = redis.call('XADD', stream, '*', 'job', jid, 'data', data)
  else
    entry = redis.call('XADD', stream, '*', 'job', jid)
  end
  if redis.call('HDEL', job, 'data') == 1 then
    -- a hash that held the envelope keeps Redis's large encoding (it never converts back to
    -- listpack): written anew, it is compact again, with the same fields and expiry
    local fields = redis.call('HGETALL', job)
    -- pcall: under an ACL rule older than PEXPIRETIME's use the hash just stays as it is
    local at = redis.pcall('PEXPIRETIME', job)
    if #fields <= 200 and type(at) == 'number' then
      redis.call('DEL', job)
      if #fields > 0 then redis.call('HSET', job, unpack(fields)) end
      if at > 0 then redis.call('PEXPIREAT', job, at) end
    end
  end
  redis.call('HSET', job, 'state', 'queued', 'entry', entry)
  return entry
end
"""
)

# Rows are {entry, job_id, data, tries, problem}; problem is '' for a job to run, else a code
# for a malformed entry (tries 0, data if readable), left pending for this consumer so that
# dead-lettering it removes it.
START_JOB: Final = (
    ENVELOPE
    + INDEX
    + EMIT
    + """
-- fields: the entry's fields, when the caller read the entry (nil: read here)
local function start_job(stream, group, consumer, session, base, now, cap, entry, jid, fields,
                         out)
  if not jid or jid == '' then
    out[#out + 1] = {entry, '', '', 0, 'no_job_id'}
    return
  end
  local job = base .. 'job:' .. jid
  local h = redis.pcall('HMGET', job, 'data', 'state', 'worker', 'session', 'entry', 'tries',
                        'function', 'try0')
  if h.err then
    out[#out + 1] = {entry, jid, '', 0, 'wrong_type'}
    return
  end
  fields = fields or entry_fields(stream, entry) or {}
  local stale = false
  if not h[1] and not h[2] then
    local at, bucket, token = indexed_entry(base, jid)
    if at and at ~= entry and job_entry(stream, at, jid) then
      stale = true  -- the job waits at another entry (enqueued again after this one)
    elseif at then
      -- queued without a hash (at this entry, or the index names none of the job's: this
      -- one is taken as the job's): it gets its hash now, as it starts
      redis.call('HDEL', bucket, jid)
      h[7] = h[7] or field(fields, 'function') or ''
      local data = field(fields, 'data')
      if data and not h[6] and not h[8] then  -- the usual case: in one write
        redis.call('HSET', job, 'state', 'active', 'entry', entry, 'worker', consumer,
                   'session', session, 'started_ms', now, 'function', h[7], 'tries', 1)
        if token then redis.call('HSET', job, 'token', token) end
        redis.call('PERSIST', job)  -- (a hash written by hand may have had a time to live)
        emit(base .. 'lifecycle', cap, 'started', jid, h[7], 1, consumer, '', '')
        out[#out + 1] = {entry, jid, data, 1, ''}
        return
      end
      -- no envelope, or a stray tries or try0 beside the index field: the long way below
      redis.call('HSET', job, 'state', 'queued', 'entry', entry, 'function', h[7])
      if token then redis.call('HSET', job, 'token', token) end
    else
      stale = redis.call('EXISTS', job) == 0  -- the job is gone: it expired, or was aborted
    end
  elseif h[2] == 'deferred' or (h[2] == 'queued' and h[5] and h[5] ~= entry and
                                job_entry(stream, h[5], jid)) then
    stale = true  -- the job waits for its time, or at another entry
  end
  if stale then  -- the entry goes, the job (if any) is left as it is
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
    return
  end
  local data = h[1] or field(fields, 'data')
  if not data then
    out[#out + 1] = {entry, jid, '', 0, 'bad_field'}
    return
  end
  local tries
  if h[2] == 'active' and h[3] == consumer and h[4] == session and h[5] == entry then
    -- this worker process started it already: a call resent after its reply was lost, or
    -- a lease it let lapse while Redis was out of reach. Not a new try.
    tries = h[6] and string.match(h[6], '^%-?%d+$') and tonumber(h[6])
  else
    tries = redis.pcall('HINCRBY', job, 'tries', 1)
    if type(tries) == 'table' then
      tries = nil  -- not an integer: nothing is written
    else
      redis.call('HSET', job, 'state', 'active', 'entry', entry, 'worker', consumer,
                 'session', session, 'started_ms', now)
      redis.call('PERSIST', job)
      emit(base .. 'lifecycle', cap, 'started', jid, h[7] or '', tries + (tonumber(h[8]) or 0),
           consumer, '', '')
    end
  end
  if not tries then
    out[#out + 1] = {entry, jid, data, 0, 'bad_field'}
    return
  end
  out[#out + 1] = {entry, jid, data, tries, ''}
end
"""
)

# (uses ENVELOPE's queue_entry)
PROMOTE_DUE: Final = """
-- 2^53 ms: a due time beyond it (or +inf) is no time at all; such a member would never come
-- due and would make the next due time unreadable, so it goes to the dead letters
local MAX_DUE = '9007199254740992'
local function bury(dead, cap, jid, reason, message, data, now)
  -- pcall: a broken dead-letter key must not stop the queue (the member goes all the same)
  redis.pcall('XADD', dead, 'MAXLEN', '~', cap, '*', 'job_id', jid, 'reason', reason,
              'message', message, 'data', data, 'at_ms', now)
end
local function promote_due(stream, deferred, dead, base, now, limit, cap)
  local absurd = redis.pcall('ZRANGEBYSCORE', deferred, '(' .. MAX_DUE, '+inf', 'WITHSCORES',
                             'LIMIT', 0, limit)
  -- a deferred key of the wrong type: no promotion, but the fetch that called this goes on
  if absurd.err then return {0, '-1'} end
  for i = 1, #absurd, 2 do
    local jid = absurd[i]
    redis.call('ZREM', deferred, jid)
    local job = base .. 'job:' .. jid
    local h = redis.pcall('HMGET', job, 'data', 'state')
    local data = ''
    if h.err then
      redis.call('DEL', job)
    else
      data = h[1] or ''
      -- a job that only waited for that time leaves with its dead letter
      if h[2] == 'deferred' then redis.call('DEL', job) end
    end
    bury(dead, cap, jid, 'bad_due_time', 'deferred until ' .. absurd[i + 1] .. ' ms', data, now)
  end
  local due = redis.call('ZRANGEBYSCORE', deferred, '-inf', now, 'LIMIT', 0, limit)
  local moved = 0
  for _, jid in ipairs(due) do
    redis.call('ZREM', deferred, jid)
    local job = base .. 'job:' .. jid
    local h = redis.pcall('HMGET', job, 'state', 'data')
    if h.err then
      redis.call('DEL', job)
      bury(dead, cap, jid, 'wrong_type', 'the job key is not a hash', '', now)
    elseif h[1] == 'deferred' then
      queue_entry(stream, job, jid, h[2])
      moved = moved + 1
    end
  end
  local nxt = redis.call('ZRANGE', deferred, 0, 0, 'WITHSCORES')
  return {moved, nxt[2] or '-1'}
end
"""
