-- retry (admin): failed|canceled -> queued now, with `budget` more attempts; the attempt count goes on.
-- KEYS[1] job key
-- ARGV[1] job id, ARGV[2] now ms
-- Returns the flat HGETALL, 0 when there is no such job, or 'not-retryable'.
local key, id, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local job = job_fields(key, 'status', 'type', 'attempt', 'budget', 'prio', 'expires', 'ver')
if not job[1] or is_expired(job[6], now) then return 0 end
if job[1] ~= 'failed' and job[1] ~= 'canceled' then return 'not-retryable' end
-- Finished jobs are packed: back to a hash, without the TTL, since the job is active again.
local flat = job_flat(key)
redis.call('DEL', key)
redis.call('HSET', key, unpack(flat))
redis.call('ZREM', EXPIRY_KEY, id)
redis.call('HDEL', key, 'completed', 'expires', 'cancel', 'pct', 'step', 'msg', 'p_at', 'cached_from')
change(key, id, job[2], job[1], 'queued', now, job[7], { 'max_att', tonumber(job[3]) + tonumber(job[4]), 'run_at', now })
enqueue(id, job[2], tonumber(job[5]), now, now)
return redis.call('HGETALL', key)
