"""The Lua pieces that write lifecycle events, progress and stats (used by ``scripts``).

Events and stats are written inside the scripts that make the transitions (enqueue, start,
finish, retry, abort, dead-letter), so they cost no round trip of their own, and only when
the transition really happened: a call resent after its reply was lost records nothing
twice. ``cap`` (``max_events``) 0 turns both off. See wire/SPEC.md, sections 12.7 and 12.9.
"""

from __future__ import annotations

from typing import Final

from .stats import HOUR_KEPT, MINUTE_KEPT

__all__ = ["EMIT", "EVENT_FIELDS", "JOB_EVENTS_SOURCE", "PROGRESS_SOURCE", "TALLY"]

#: The fields of every event entry, in this order (the same set each time, so that Redis
#: stores the names once per block of entries).
EVENT_FIELDS: Final = ("type", "job_id", "function", "try", "worker", "duration_ms", "info")

# the stream is trimmed once per call (``trim_events``, before the script returns), not at
# every XADD: a call that starts or finishes a batch of jobs pays for one trim
EMIT: Final = """
local emitted, emitted_cap = nil, 0
local function emit(log, cap, kind, jid, fn, try, worker, ms, info)
  if cap > 0 then
    redis.call('XADD', log, '*', 'type', kind, 'job_id', jid, 'function', fn, 'try', try,
               'worker', worker, 'duration_ms', ms, 'info', info)
    emitted, emitted_cap = log, cap
  end
end
local function trim_events()
  if emitted then redis.call('XTRIM', emitted, 'MAXLEN', '~', emitted_cap) end
end
"""

# counts of one call, summed per field, then added to the minute's and the hour's hash
TALLY: Final = f"""
local tally = {{}}
local function count(fn, outcome, bucket, ms)
  local f = 'c:' .. outcome .. ':' .. fn
  tally[f] = (tally[f] or 0) + 1
  if bucket ~= '' then
    f = 'b:' .. bucket .. ':' .. fn
    tally[f] = (tally[f] or 0) + 1
    f = 't:' .. fn
    tally[f] = (tally[f] or 0) + (tonumber(ms) or 0)
  end
end
local function flush_tally(base, now)
  if next(tally) == nil then return end
  now = tonumber(now)
  local minute, hour = math.floor(now / 60000), math.floor(now / 3600000)
  local m = base .. 'stats:m:' .. string.format('%d', minute)
  local h = base .. 'stats:h:' .. string.format('%d', hour)
  for f, n in pairs(tally) do
    redis.call('HINCRBY', m, f, n)
    redis.call('HINCRBY', h, f, n)
  end
  redis.call('PEXPIREAT', m, string.format('%d', (minute + 1) * 60000 + {MINUTE_KEPT}))
  redis.call('PEXPIREAT', h, string.format('%d', (hour + 1) * 3600000 + {HOUR_KEPT}))
end
"""

PROGRESS_SOURCE: Final = """
local log = KEYS[1]
local base, worker, cap = ARGV[1], ARGV[2], tonumber(ARGV[3]) or 0
local written = 0
for i = 4, #ARGV, 5 do
  local jid, entry, fn, try, value = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local job = base .. 'job:' .. jid
  -- only while this delivery runs the job: a late report must not bring a finished job back
  local held = redis.pcall('HGET', job, 'entry')
  if held == entry then
    redis.call('HSET', job, 'progress', value)
    emit(log, cap, 'progress', jid, fn, try, worker, '', value)
    written = written + 1
  end
end
trim_events()
return written
"""

# newest first, in chunks, back to the job's latest ``enqueued`` event (or the oldest kept)
JOB_EVENTS_SOURCE: Final = """
local log, jid = KEYS[1], ARGV[1]
local chunk = tonumber(ARGV[2])
local out = {}
local last = '+'
while true do
  local entries = redis.call('XREVRANGE', log, last, '-', 'COUNT', chunk)
  local found = false
  for _, e in ipairs(entries) do
    if field(e[2], 'job_id') == jid then
      out[#out + 1] = e
      if field(e[2], 'type') == 'enqueued' then found = true break end
    end
  end
  if found or #entries < chunk then break end
  last = '(' .. entries[#entries][1]
end
return out
"""
