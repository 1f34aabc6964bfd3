"""The scripts that start jobs: every way an entry becomes a running job.

``fetch`` (a busy worker's read), ``start`` (entries a blocking read gave), ``start_delivered``
(pipelined behind an idle worker's blocking read) and ``reclaim`` (entries whose lease lapsed)
all end in ``start_job`` (``lua_jobs``), so a job starts by one rule whichever way it came.
"""

from __future__ import annotations

from .lua_jobs import PROMOTE_DUE, START_JOB
from .lua_script import WRITES, Script, lua

__all__ = ["FETCH", "RECLAIM", "START", "START_DELIVERED"]

FETCH = Script(
    "fetch",
    keys=("stream", "deferred", "dead"),
    argv=(
        "group",
        "consumer",
        "session",
        "base",
        "now_ms",
        "count",
        "max_dead_entries",
        "max_events",
    ),
    source=lua(
        WRITES,
        START_JOB,
        PROMOTE_DUE,
        """
local stream, deferred, dead = KEYS[1], KEYS[2], KEYS[3]
local group, consumer, session, base, now, count, cap =
  ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local events = tonumber(ARGV[8]) or 0
-- due deferred jobs join the stream first, so a busy worker needs no separate promote call
local promoted = promote_due(stream, deferred, dead, base, now, 1000, cap)
local out = {promoted[2]}
local res = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count,
                       'STREAMS', stream, '>')
if res then
  for _, e in ipairs(res[1][2]) do
    start_job(stream, group, consumer, session, base, now, events, e[1], field(e[2], 'job'),
              e[2], out)
  end
end
trim_events()
return out
""",
    ),
)

START = Script(
    "start",
    keys=("stream",),
    argv=("group", "consumer", "session", "base", "now_ms", "max_events", "entry_id job_id ..."),
    source=lua(
        WRITES,
        START_JOB,
        """
local stream = KEYS[1]
local group, consumer, session, base, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local events = tonumber(ARGV[6]) or 0
local out = {}
for i = 7, #ARGV, 2 do
  start_job(stream, group, consumer, session, base, now, events, ARGV[i], ARGV[i + 1], nil,
            out)
end
trim_events()
return out
""",
    ),
)

# XREADGROUP BLOCK and this script go in one pipeline: Redis runs the script right after the
# read returns, on the same connection, so an idle worker starts a job without a second round
# trip. It starts what the read gave this consumer: its pending entries above ``after`` (the
# highest entry id this worker process was given before), less those its own session started
# already (jobs it reclaimed meanwhile, which it knows of). It also settles the wake markers the
# read took and returns their count first, so that the worker promotes deferred jobs.
START_DELIVERED = Script(
    "start_delivered",
    keys=("stream", "wake"),
    argv=("group", "consumer", "session", "base", "now_ms", "max_events", "after", "count"),
    source=lua(
        WRITES,
        START_JOB,
        """
local stream, wake = KEYS[1], KEYS[2]
local group, consumer, session, base, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local events, after, count = tonumber(ARGV[6]) or 0, ARGV[7], ARGV[8]
local marks = redis.call('XPENDING', wake, group, '-', '+', 100, consumer)
for _, m in ipairs(marks) do
  redis.call('XACK', wake, group, m[1])
  redis.call('XDEL', wake, m[1])
end
local out = {#marks}
for _, p in ipairs(redis.call('XPENDING', stream, group, '(' .. after, '+', count, consumer)) do
  local entry = p[1]
  local e = redis.call('XRANGE', stream, entry, entry)[1]
  if not e then
    redis.call('XACK', stream, group, entry)  -- deleted while pending: nothing to start
  else
    local jid = field(e[2], 'job')
    local h = jid and redis.pcall('HMGET', base .. 'job:' .. jid, 'state', 'session', 'entry')
    if not (h and not h.err and h[1] == 'active' and h[2] == session and h[3] == entry) then
      start_job(stream, group, consumer, session, base, now, events, entry, jid, e[2], out)
    end
  end
end
trim_events()
return out
""",
    ),
)

RECLAIM = Script(
    "reclaim",
    keys=("stream",),
    argv=("group", "consumer", "session", "base", "now_ms", "lease_ms", "count", "max_events"),
    source=lua(
        WRITES,
        START_JOB,
        """
local stream = KEYS[1]
local group, consumer, session, base, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local lease, count, events = ARGV[6], ARGV[7], tonumber(ARGV[8]) or 0
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
      start_job(stream, group, consumer, session, base, now, events, e[1], field(e[2], 'job'),
                e[2], out)
    elseif e then
      redis.call('XACK', stream, group, e[1])
    end
  end
until cursor == '0-0' or #out >= tonumber(count)
trim_events()
return out
""",
    ),
)
