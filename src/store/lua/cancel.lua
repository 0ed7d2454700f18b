-- cancel: queued -> canceled now; running -> cancel requested (its worker is signalled); finished: unchanged.
-- KEYS[1] job key
-- ARGV[1] job id, ARGV[2] now ms, ARGV[3] ttl ms
-- Returns { outcome, flat HGETALL }, or 0 when there is no such (unexpired) job.
local key, id, now, ttl_ms = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local job = job_fields(key, 'status', 'type', 'cancel', 'expires', 'ver', 'tenant', 'ckey')
if not job[1] or is_expired(job[4], now) then return 0 end
local outcome = 'unchanged'
if job[1] == 'queued' then
  dequeue_ready(id, job[2], job[6], job[7] or '')
  redis.call('ZREM', delayed_key(job[2]), id)
  finalize(key, id, job[2], 'queued', 'canceled', now, ttl_ms, job[5], {})
  outcome = 'canceled'
elseif job[1] == 'running' then
  if job[3] ~= '1' then
    change(key, id, job[2], 'running', 'running', now, job[5], { 'cancel', '1' })
    publish('{"kind":"cancel","jobId":"' .. id .. '"}')
  end
  outcome = 'cancel-requested'
end
return { outcome, job_flat(key) }
