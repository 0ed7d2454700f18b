-- run_now (admin): a queued job waiting for a later run_at becomes ready now.
-- KEYS[1] job key
-- ARGV[1] job id, ARGV[2] now ms
-- Returns the flat HGETALL, 0 when there is no such job, or 'not-delayed'.
local key, id, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local job = job_fields(key, 'status', 'type', 'run_at', 'prio', 'ver', 'expires')
if not job[1] or is_expired(job[6], now) then return 0 end
if job[1] ~= 'queued' or tonumber(job[3]) <= now or redis.call('ZSCORE', delayed_key(job[2]), id) == false then return 'not-delayed' end
redis.call('ZREM', delayed_key(job[2]), id)
change(key, id, job[2], 'queued', 'queued', now, job[5], { 'run_at', now })
enqueue(id, job[2], tonumber(job[4]), now, now)
return redis.call('HGETALL', key)
