-- Finish logic shared by finish.lua and finish_claim.lua (see finish.lua for the arguments).
-- Returns { status, version }, or 0 when the lease is not held.
local function finish_job(id, lease_id, outcome, now, ttl_ms, payload, run_at, capped)
  local key = job_key(id)
  -- Every field at once: a finished attempt is packed from them (finalize), so one read serves both.
  -- A job already finished is a packed string, which HMGET refuses: its lease is not held either.
  local values = redis.pcall('HMGET', key, unpack(PACKED_FIELDS))
  if values.err then return 0 end
  local function field(name) return values[PACKED_INDEX[name]] end
  if field('status') ~= 'running' or field('lease') ~= lease_id then return 0 end
  local job_type, version = field('type'), field('ver')
  local priority, attempt, tenant = field('prio'), field('attempt'), field('tenant')
  local function timeline(ended_as, error_json)
    return with_attempt(field('atts'), attempt, field('worker'), field('started'), now, ended_as, error_json)
  end
  local status
  if field('cancel') == '1' or outcome == 'canceled' then
    status = 'canceled'
    version = finalize(key, id, job_type, 'running', status, now, ttl_ms, version, { 'atts', timeline('canceled') }, values)
  elseif outcome == 'succeeded' then
    status = 'succeeded'
    version = finalize(key, id, job_type, 'running', status, now, ttl_ms, version, {
      -- The succeeding attempt is not written to `atts`: the job's own worker, started and completed say it all
      -- (redis-job-store.ts adds it back on read), which keeps a finished job ~150 bytes smaller.
      'result', payload, 'pct', '100', 'p_at', tostring(now), 'error', false,
    }, values)
  elseif outcome == 'failed' then
    status = 'failed'
    version = finalize(key, id, job_type, 'running', status, now, ttl_ms, version, { 'error', payload, 'atts', timeline('failed', payload) }, values)
  elseif outcome == 'retry' then
    status = 'queued'
    version = requeue(key, id, job_type, priority, tonumber(run_at), now, version, { 'error', payload, 'atts', timeline('retry', payload) }, tenant)
  elseif outcome == 'released' then
    status = 'queued'
    version = requeue(key, id, job_type, priority, now, now, version, { 'attempt', tonumber(attempt) - 1, 'atts', timeline('released') }, tenant)
  else
    return redis.error_reply('finish: unknown outcome ' .. outcome)
  end
  if capped == '1' and redis.call('ZCARD', fair_tenants_key(job_type)) > 0 then
    publish('{"kind":"work","type":"' .. job_type .. '"}')
  end
  return { status, version }
end
