-- finish: ends a running attempt, fenced by its lease. A cancel requested meanwhile wins.
-- KEYS[1] job key
-- ARGV[1] job id, ARGV[2] lease id, ARGV[3] outcome (succeeded|failed|retry|canceled|released),
-- ARGV[4] now ms, ARGV[5] ttl ms, ARGV[6] result JSON (succeeded) or error JSON (failed, retry),
-- ARGV[7] run_at ms (retry), ARGV[8] '1' when the type has a fleet-wide concurrency limit: then a
-- finish signals 'work' while jobs of the type wait, since the freed slot may be another instance's to use
-- Returns { status, version }, or 0 when the lease is not held.
local key, id, lease_id, outcome = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local now, ttl_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local job = redis.call('HMGET', key, 'status', 'lease', 'type', 'cancel')
if job[1] ~= 'running' or job[2] ~= lease_id then return 0 end
local job_type = job[3]
local status, version
if job[4] == '1' or outcome == 'canceled' then
  status = 'canceled'
  version = finalize(key, id, job_type, 'running', status, now, ttl_ms)
elseif outcome == 'succeeded' then
  status = 'succeeded'
  redis.call('HSET', key, 'result', ARGV[6], 'pct', 100, 'p_at', now)
  redis.call('HDEL', key, 'error')
  version = finalize(key, id, job_type, 'running', status, now, ttl_ms)
elseif outcome == 'failed' then
  status = 'failed'
  redis.call('HSET', key, 'error', ARGV[6])
  version = finalize(key, id, job_type, 'running', status, now, ttl_ms)
elseif outcome == 'retry' then
  status = 'queued'
  redis.call('HSET', key, 'error', ARGV[6])
  version = requeue(key, id, job_type, tonumber(ARGV[7]), now)
elseif outcome == 'released' then
  status = 'queued'
  redis.call('HINCRBY', key, 'attempt', -1)
  version = requeue(key, id, job_type, now, now)
else
  return redis.error_reply('finish: unknown outcome ' .. outcome)
end
if ARGV[8] == '1' and redis.call('ZCARD', ready_key(job_type)) > 0 then
  publish('{"kind":"work","type":"' .. job_type .. '"}')
end
return { status, version }
