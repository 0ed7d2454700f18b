-- Finish logic shared by finish.lua and finish_claim.lua (see finish.lua for the arguments).
-- Returns { status, version }, or 0 when the lease is not held.
local function finish_job(id, lease_id, outcome, now, ttl_ms, payload, run_at, capped)
  local key = job_key(id)
  local job = job_fields(key, 'status', 'lease', 'type', 'cancel', 'ver', 'prio', 'attempt', 'tenant', 'worker', 'started', 'atts')
  if job[1] ~= 'running' or job[2] ~= lease_id then return 0 end
  local job_type, version = job[3], job[5]
  local function timeline(ended_as, error_json)
    return with_attempt(job[11], job[7], job[9], job[10], now, ended_as, error_json)
  end
  local status
  if job[4] == '1' or outcome == 'canceled' then
    status = 'canceled'
    version = finalize(key, id, job_type, 'running', status, now, ttl_ms, version, { 'atts', timeline('canceled') })
  elseif outcome == 'succeeded' then
    status = 'succeeded'
    version = finalize(key, id, job_type, 'running', status, now, ttl_ms, version, {
      -- The succeeding attempt is not written to `atts`: the job's own worker, started and completed say it all
      -- (redis-job-store.ts adds it back on read), which keeps a finished job ~150 bytes smaller.
      'result', payload, 'pct', '100', 'p_at', tostring(now), 'error', false,
    })
  elseif outcome == 'failed' then
    status = 'failed'
    version = finalize(key, id, job_type, 'running', status, now, ttl_ms, version, { 'error', payload, 'atts', timeline('failed', payload) })
  elseif outcome == 'retry' then
    status = 'queued'
    version = requeue(key, id, job_type, job[6], tonumber(run_at), now, version, { 'error', payload, 'atts', timeline('retry', payload) }, job[8])
  elseif outcome == 'released' then
    status = 'queued'
    version = requeue(key, id, job_type, job[6], now, now, version, { 'attempt', tonumber(job[7]) - 1, 'atts', timeline('released') }, job[8])
  else
    return redis.error_reply('finish: unknown outcome ' .. outcome)
  end
  if capped == '1' and redis.call('ZCARD', ready_key(job_type)) > 0 then
    publish('{"kind":"work","type":"' .. job_type .. '"}')
  end
  return { status, version }
end
