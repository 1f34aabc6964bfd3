#!lua
local function wake_if_earliest(deferred, wake, due)
  local first = redis.call('ZRANGE', deferred, 0, 0, 'WITHSCORES')
  if first[2] == nil or tonumber(due) < tonumber(first[2]) then
    redis.call('XADD', wake, 'MAXLEN', '~', 100, '*', 'wake', due)
  end
end

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

-- log, fn, try0, cap: the event stream, the function, the envelope's try - 1 and the stream's
-- cap; without them (log nil) the job is stored without an event
local function enqueue_job(keys, argv, log, fn, try0, cap)
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
  -- a failed run's kept envelope (P:{Q}:failed:ID, beside the results key) is stale now
  local tail = 'results:' .. jid
  if string.sub(results, -#tail) == tail then
    redis.call('DEL', string.sub(results, 1, #results - #tail) .. 'failed:' .. jid)
  end
  local outcome
  if due ~= '' then
    wake_if_earliest(deferred, wake, due)
    redis.call('ZADD', deferred, due, jid)
    redis.call('HSET', job, 'data', data, 'state', 'deferred', 'token', token)
    outcome = 2
  else
    -- the envelope rides in the entry: the hash stays small enough for Redis's compact
    -- (listpack) encoding, which an envelope-sized value would rule out
    local entry = redis.call('XADD', stream, '*', 'job', jid, 'data', data)
    redis.call('HSET', job, 'state', 'queued', 'entry', entry, 'token', token)
    outcome = 1
  end
  if expires ~= '' then redis.call('PEXPIREAT', job, expires) end
  cap = tonumber(cap) or 0
  if log and cap > 0 then
    -- kept for the started event, which a worker writes without decoding the envelope
    redis.call('HSET', job, 'function', fn)
    try0 = tonumber(try0) or 0
    if try0 > 0 then redis.call('HSET', job, 'try0', try0) end
    emit(log, cap, 'enqueued', jid, fn, try0 + 1, '', '', due)
    trim_events()
  end
  return outcome
end

return enqueue_job(KEYS, ARGV, KEYS[7], ARGV[7], ARGV[8], ARGV[9])
