-- retry (admin): failed|canceled -> queued now, with `budget` more attempts; the attempt count goes on.
-- KEYS[1] job key
-- ARGV[1] job id, ARGV[2] now ms
-- Returns the flat HGETALL, 0 when there is no such job, or 'not-retryable'.
local key, id, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local job = redis.call('HMGET', key, 'status', 'type', 'attempt', 'budget', 'prio')
if not job[1] or is_expired(key, now) then return 0 end
if job[1] ~= 'failed' and job[1] ~= 'canceled' then return 'not-retryable' end
redis.call('PERSIST', key)
redis.call('ZREM', EXPIRY_KEY, id)
redis.call('HDEL', key, 'completed', 'expires', 'cancel', 'pct', 'step', 'msg', 'p_at')
redis.call('HSET', key, 'max_att', tonumber(job[3]) + tonumber(job[4]), 'run_at', now)
set_status(key, id, job[2], job[1], 'queued')
enqueue(id, job[2], tonumber(job[5]), now, now)
touch(key, now)
return redis.call('HGETALL', key)
