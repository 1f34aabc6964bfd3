#!lua
-- redis.pcall, but a key of a slot another master serves (or a cluster down) fails the call
local redis = setmetatable({pcall = function(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and type(r.err) == 'string' and
      (string.find(r.err, 'non local key', 1, true) or
       string.find(r.err, 'cluster is down', 1, true)) then
    error(r)
  end
  return r
end}, {__index = redis})
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

local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end

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

return enqueue_job(KEYS, ARGV, KEYS[7], ARGV[7], ARGV[8], ARGV[9])
