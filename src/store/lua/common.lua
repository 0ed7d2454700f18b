-- Helpers shared by every script (prepended after the key helpers from redis-keys.ts).
-- Job hash fields are documented in redis-job-store.ts; an absent field means null.

local PRIORITY_BAND = 4398046511104 -- 2^42: ready score = (100 - priority) * 2^42 + run_at ms

local function ready_score(priority, run_at)
  return (100 - priority) * PRIORITY_BAND + run_at
end

local function publish(event_json)
  redis.call('PUBLISH', EVENTS_CHANNEL, event_json)
end

local function is_expired(key, now)
  local expires = redis.call('HGET', key, 'expires')
  return expires and tonumber(expires) <= now
end

-- Moves the job's listing-index entry and sets its status field.
local function set_status(key, id, job_type, from, to)
  redis.call('ZREM', index_key(from, job_type), id)
  redis.call('ZADD', index_key(to, job_type), 0, id)
  redis.call('HSET', key, 'status', to)
end

local function touch(key, now)
  redis.call('HSET', key, 'updated', now)
  return redis.call('HINCRBY', key, 'ver', 1)
end

-- Queues a job (ready now, or delayed until run_at) and tells idle workers when that may wake them:
-- a ready queue that was empty, or a delayed job (whose time an idle worker must learn).
local function enqueue(id, job_type, priority, run_at, now)
  if run_at > now then
    redis.call('ZADD', delayed_key(job_type), run_at, id)
    publish('{"kind":"work","type":"' .. job_type .. '"}')
  else
    local ready = ready_key(job_type)
    redis.call('ZADD', ready, ready_score(priority, run_at), id)
    if redis.call('ZCARD', ready) == 1 then
      publish('{"kind":"work","type":"' .. job_type .. '"}')
    end
  end
end

-- running -> queued (retry, release, lapsed lease): progress starts again from null.
local function requeue(key, id, job_type, run_at, now)
  redis.call('HDEL', key, 'lease', 'lease_until', 'pct', 'step', 'msg', 'p_at')
  redis.call('HSET', key, 'run_at', run_at)
  redis.call('ZREM', LEASES_KEY, id)
  set_status(key, id, job_type, 'running', 'queued')
  local priority = tonumber(redis.call('HGET', key, 'prio'))
  enqueue(id, job_type, priority, run_at, now)
  return touch(key, now)
end

-- Any active status -> a terminal one; the job then expires ttl_ms later.
local function finalize(key, id, job_type, from, to, now, ttl_ms)
  local expires = now + ttl_ms
  redis.call('HDEL', key, 'lease', 'lease_until')
  redis.call('HSET', key, 'completed', now, 'expires', expires)
  redis.call('PEXPIREAT', key, expires)
  redis.call('ZREM', LEASES_KEY, id)
  redis.call('ZADD', EXPIRY_KEY, expires, id)
  set_status(key, id, job_type, from, to)
  redis.call('HINCRBY', FINISHED_KEY, math.floor(now / 1000), 1)
  return touch(key, now)
end
