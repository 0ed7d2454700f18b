-- Helpers shared by every script (prepended after the key helpers from redis-keys.ts).
-- Job hash fields are documented in redis-job-store.ts; an absent field means null.
-- Each state change reads what it needs with one HMGET and writes with one HSET: per-job work is the
-- cost that bounds throughput.

-- Instances stamp times with their own clocks, and a script may run a little after its stamp: a claim
-- could then carry a time earlier than the finish that freed its slot, or trim a rate window another
-- claim already counted in. Claims and finishes therefore never use a time earlier than the last one used.
local function monotonic_now(now)
  local last = tonumber(redis.call('GET', CLOCK_KEY) or '0')
  if last > now then return last end
  redis.call('SET', CLOCK_KEY, now)
  return now
end

local function publish(event_json)
  redis.call(PUBLISH_COMMAND, EVENTS_CHANNEL, event_json)
end

-- A finished job is kept packed: its fields as one JSON string (a string key holds a finished job in about
-- a third of the memory of a hash whose input is over 64 bytes). Active jobs are hashes, as they change.
-- These read either form; `false` stands for an absent field, as HMGET answers.
-- A packed job is a JSON array of the values of PACKED_FIELDS (defined in redis-job-store.ts), in order; absent
-- ones at the end may be left out.
local function job_fields(key, ...)
  local reply = redis.pcall('HMGET', key, ...)
  if not reply.err then return reply end
  local packed = cjson.decode(redis.call('GET', key))
  local values = {}
  for i, field in ipairs({ ... }) do values[i] = packed[PACKED_INDEX[field]] or false end
  return values
end

-- The job's fields as a flat field/value list (what HGETALL answers), from either form.
local function job_flat(key)
  local reply = redis.pcall('HGETALL', key)
  if not reply.err then return reply end
  local flat = {}
  for i, value in ipairs(cjson.decode(redis.call('GET', key))) do
    if value then
      flat[#flat + 1] = PACKED_FIELDS[i]
      flat[#flat + 1] = value
    end
  end
  return flat
end

local OPEN_TENANT = '-'

-- The tenant's queued and running jobs in this partition (what a tenant's active-job limit counts).
local function active_jobs_of(tenant)
  local active = 0
  for _, each_type in ipairs(redis.call('SMEMBERS', TYPES_KEY)) do
    for _, status in ipairs({ 'queued', 'running' }) do
      local index = tenant == OPEN_TENANT and index_key(status, each_type) or tenant_index_key(tenant, status, each_type)
      active = active + redis.call('ZCARD', index)
    end
  end
  return active
end

-- Moves a job's listing-index entries (the global one, and its tenant's unless it is the open tenant).
local function move_index(id, tenant, job_type, from, to)
  redis.call('ZREM', index_key(from, job_type), id)
  redis.call('ZADD', index_key(to, job_type), 0, id)
  if tenant and tenant ~= OPEN_TENANT then
    redis.call('ZREM', tenant_index_key(tenant, from, job_type), id)
    redis.call('ZADD', tenant_index_key(tenant, to, job_type), 0, id)
  end
end

-- Removes a job's listing-index entries for `status`.
local function drop_index(id, tenant, job_type, status)
  redis.call('ZREM', index_key(status, job_type), id)
  if tenant and tenant ~= OPEN_TENANT then redis.call('ZREM', tenant_index_key(tenant, status, job_type), id) end
end

-- Remembers for ttl_ms that a job went, and whose it was (a tenant must not learn of another's jobs).
local function tombstone(id, at, tenant, ttl_ms)
  redis.call('SET', gone_key(id), at .. ':' .. (tenant or OPEN_TENANT), 'PX', ttl_ms)
end

-- A job's webhook delivery of `event`, queued when its webhook (`wh`, the job's JSON field, or false) asks
-- for that event. `snapshot()` gives the job as packed JSON; the delivery is named `<id>:<version>`.
-- Kept 25 h: deliveries are retried for 24 h. Returns true when queued.
local WEBHOOK_KEEP_MS = 90000000
local function queue_webhook(id, wh, event, version, now, snapshot)
  if not wh then return false end
  local spec = cjson.decode(wh)
  for _, wanted in ipairs(spec.events) do
    if wanted == event then
      local delivery = id .. ':' .. version
      local key = webhook_key(delivery)
      redis.call('HSET', key, 'event', event, 'url', spec.url, 'job', snapshot(), 'created', now, 'attempts', 0)
      redis.call('PEXPIRE', key, WEBHOOK_KEEP_MS)
      redis.call('ZADD', WEBHOOKS_DUE_KEY, now, delivery)
      publish('{"kind":"webhook"}')
      return true
    end
  end
  return false
end

-- An active job's fields as a packed JSON array (what a delivery carries).
local function packed_snapshot(key)
  return cjson.encode(redis.call('HMGET', key, unpack(PACKED_FIELDS)))
end

-- The attempt timeline: `atts` is a JSON array (text) of ended attempts, appended to as each one ends and
-- kept under ATTEMPTS_MAX_BYTES by dropping the oldest. `error_json` is '' or an error's JSON.
local ATTEMPTS_MAX_BYTES = 32768
local function with_attempt(atts, attempt, worker, started, ended, outcome, error_json)
  local entry = '{"attempt":' .. (attempt or '0') .. ',"workerId":' .. (worker and cjson.encode(worker) or 'null') ..
    ',"startedAt":' .. (started or 'null') .. ',"endedAt":' .. ended .. ',"outcome":"' .. outcome ..
    '","error":' .. ((error_json and error_json ~= '') and error_json or 'null') .. '}'
  if not atts then return '[' .. entry .. ']' end
  local joined = string.sub(atts, 1, -2) .. ',' .. entry .. ']'
  while #joined > ATTEMPTS_MAX_BYTES do
    local list = cjson.decode(joined)
    if #list <= 1 then break end
    table.remove(list, 1)
    joined = cjson.encode(list)
  end
  return joined
end

local function is_expired(expires, now)
  return expires and tonumber(expires) <= now
end

-- Sets status `to` (moving the listing-index entry from `from`), `fields` (a flat field/value list),
-- `updated` and the next version, in one HSET. Returns the new version. `tenant`, when the caller has
-- read it already, spares a read (it is needed only to move the index entry).
local function change(key, id, job_type, from, to, now, version, fields, tenant)
  if from ~= to then move_index(id, tenant or redis.call('HGET', key, 'tenant'), job_type, from, to) end
  local next_version = tonumber(version) + 1
  fields[#fields + 1] = 'status'
  fields[#fields + 1] = to
  fields[#fields + 1] = 'updated'
  fields[#fields + 1] = now
  fields[#fields + 1] = 'ver'
  fields[#fields + 1] = next_version
  redis.call('HSET', key, unpack(fields))
  -- Whoever waits on this job (a long-poll, an event stream, on any instance) learns of the change.
  redis.call(PUBLISH_COMMAND, changed_channel(id), next_version)
  return next_version
end

-- Queues a job (ready now, or delayed until run_at) and tells idle workers when that may wake them: a tenant
-- with nothing to claim before (a queue that was empty), or a delayed job (whose time an idle worker must learn).
-- `flow`: the job's { tenant, concurrency key or false }, when the caller has read them (else read here).
local function enqueue(id, job_type, priority, run_at, now, flow)
  if run_at > now then
    redis.call('ZADD', delayed_key(job_type), run_at, id)
    publish('{"kind":"work","type":"' .. job_type .. '"}')
    return
  end
  flow = flow or redis.call('HMGET', job_key(id), 'tenant', 'ckey')
  if enqueue_ready(id, job_type, flow[1] or OPEN_TENANT, flow[2] or '', ready_score(priority, run_at)) then
    publish('{"kind":"work","type":"' .. job_type .. '"}')
  end
end

-- A running job stopped running: the slot of its concurrency key (if any) is free again.
local function stopped_running(job_type, tenant, ckey)
  if free_key_slot(job_type, tenant, ckey) then publish('{"kind":"work","type":"' .. job_type .. '"}') end
end

-- running -> queued (retry, release, lapsed lease): progress starts again from null.
local function requeue(key, id, job_type, priority, run_at, now, version, fields, tenant)
  redis.call('HDEL', key, 'lease', 'lease_until', 'pct', 'step', 'msg', 'p_at')
  fields[#fields + 1] = 'run_at'
  fields[#fields + 1] = run_at
  local next_version = change(key, id, job_type, 'running', 'queued', now, version, fields, tenant)
  redis.call('ZREM', LEASES_KEY, id)
  local flow = redis.call('HMGET', key, 'tenant', 'ckey')
  stopped_running(job_type, flow[1], flow[2])
  enqueue(id, job_type, tonumber(priority), run_at, now, flow)
  return next_version
end

-- Result reuse: ends or frees the jobs following a leader that just finished (defined after finalize).
local settle_followers

-- Any active status -> a terminal one: the job is packed into one value that expires ttl_ms later.
-- `fields` (a flat field/value list; `false` drops a field) go into the packed value, with the status,
-- completion and expiry times and the next version: one HMGET (none when the caller passes `values`) and
-- one SET, whatever was in the hash.
-- `values`: the job's PACKED_FIELDS as HMGET answered them, when the caller read them already (else read here).
local function finalize(key, id, job_type, from, to, now, ttl_ms, version, fields, values)
  local expires = now + ttl_ms
  if from == 'running' then redis.call('ZREM', LEASES_KEY, id) end
  values = values or redis.call('HMGET', key, unpack(PACKED_FIELDS))
  move_index(id, values[PACKED_INDEX['tenant']], job_type, from, to)
  if from == 'running' then stopped_running(job_type, values[PACKED_INDEX['tenant']], values[PACKED_INDEX['ckey']]) end
  local next_version = tonumber(version) + 1
  for i = 1, #fields, 2 do values[PACKED_INDEX[fields[i]]] = fields[i + 1] end
  values[PACKED_INDEX['status']] = to
  values[PACKED_INDEX['updated']] = tostring(now)
  values[PACKED_INDEX['ver']] = tostring(next_version)
  values[PACKED_INDEX['completed']] = tostring(now)
  values[PACKED_INDEX['expires']] = tostring(expires)
  values[PACKED_INDEX['lease']] = false
  values[PACKED_INDEX['lease_until']] = false
  -- Redis drops the key a minute after `expires` (reads treat it as gone from `expires` on): the sweeper,
  -- which runs every few seconds, then still finds the job and removes its index entry directly.
  -- Absent fields at the end are left out (a reader takes a missing value as absent): the fields added last are the
  -- rarely set ones, so a typical finished job is shorter by them.
  local last = #PACKED_FIELDS
  while last > 0 and not values[last] do
    values[last] = nil
    last = last - 1
  end
  local packed = cjson.encode(values)
  redis.call('SET', key, packed, 'PXAT', expires + 60000)
  redis.call(PUBLISH_COMMAND, changed_channel(id), next_version)
  queue_webhook(id, values[PACKED_INDEX['wh']], 'job.' .. to, next_version, now, function() return packed end)
  redis.call('ZADD', EXPIRY_KEY, expires, id)
  -- Its log lines (if its handler wrote any: `lg`, set by append_logs.lua) go with it.
  if values[PACKED_INDEX['lg']] then redis.call('PEXPIREAT', logs_key(id), expires + 60000) end
  redis.call('HINCRBY', FINISHED_KEY, math.floor(now / 1000), 1)
  if values[PACKED_INDEX['cache']] then settle_followers(id, to, values, now, ttl_ms) end
  return next_version
end

-- A leader's cache entry (`cache` = '<key> <ttl ms>') is kept for the TTL once it succeeded, dropped otherwise.
-- Its followers finish as it did when it succeeded or failed; when it was canceled they run on their own.
settle_followers = function(id, to, values, now, ttl_ms)
  local cache = values[PACKED_INDEX['cache']]
  local space = string.find(cache, ' ', 1, true)
  local cache_key = string.sub(cache, 1, space - 1)
  if redis.call('GET', cache_key) == id then
    if to == 'succeeded' then
      redis.call('PEXPIRE', cache_key, tonumber(string.sub(cache, space + 1)))
    else
      redis.call('DEL', cache_key)
    end
  end
  local set = followers_key(id)
  for _, follower in ipairs(redis.call('SMEMBERS', set)) do
    local key = job_key(follower)
    local job = job_fields(key, 'status', 'type', 'ver', 'cached_from', 'prio')
    if job[1] == 'queued' and job[4] == id then
      if to == 'succeeded' then
        finalize(key, follower, job[2], 'queued', 'succeeded', now, ttl_ms, job[3], {
          'result', values[PACKED_INDEX['result']], 'pct', '100', 'p_at', tostring(now), 'error', false,
        })
      elseif to == 'failed' then
        finalize(key, follower, job[2], 'queued', 'failed', now, ttl_ms, job[3], { 'error', values[PACKED_INDEX['error']] })
      else
        redis.call('HDEL', key, 'cached_from')
        change(key, follower, job[2], 'queued', 'queued', now, job[3], {})
        enqueue(follower, job[2], tonumber(job[5]), now, now)
      end
    end
  end
  redis.call('DEL', set)
end
