-- Finish logic shared by finish.lua and finish_claim.lua (see finish.lua for the arguments).
-- Returns { status, version }, or 0 when the lease is not held.
local function finish_job(id, lease_id, outcome, now, ttl_ms, payload, run_at, capped)
  local key = job_key(id)
  local job = redis.call('HMGET', key, 'status', 'lease', 'type', 'cancel')
  if job[1] ~= 'running' or job[2] ~= lease_id then return 0 end
  local job_type = job[3]
  local status, version
  if job[4] == '1' or outcome == 'canceled' then
    status = 'canceled'
    version = finalize(key, id, job_type, 'running', status, now, ttl_ms)
  elseif outcome == 'succeeded' then
    status = 'succeeded'
    redis.call('HSET', key, 'result', payload, 'pct', 100, 'p_at', now)
    redis.call('HDEL', key, 'error')
    version = finalize(key, id, job_type, 'running', status, now, ttl_ms)
  elseif outcome == 'failed' then
    status = 'failed'
    redis.call('HSET', key, 'error', payload)
    version = finalize(key, id, job_type, 'running', status, now, ttl_ms)
  elseif outcome == 'retry' then
    status = 'queued'
    redis.call('HSET', key, 'error', payload)
    version = requeue(key, id, job_type, tonumber(run_at), now)
  elseif outcome == 'released' then
    status = 'queued'
    redis.call('HINCRBY', key, 'attempt', -1)
    version = requeue(key, id, job_type, now, now)
  else
    return redis.error_reply('finish: unknown outcome ' .. outcome)
  end
  if capped == '1' and redis.call('ZCARD', ready_key(job_type)) > 0 then
    publish('{"kind":"work","type":"' .. job_type .. '"}')
  end
  return { status, version }
end
