-- create: stores a new queued job.
-- KEYS[1] job key
-- ARGV[1] id, ARGV[2] type, ARGV[3] priority, ARGV[4] run_at ms, ARGV[5] now ms,
-- ARGV[6..] field, value pairs for the job hash
-- Returns 1.
local key, id, job_type = KEYS[1], ARGV[1], ARGV[2]
local priority, run_at, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('HSET', key, unpack(ARGV, 6))
redis.call('ZADD', index_key('queued', job_type), 0, id)
redis.call('SADD', TYPES_KEY, job_type)
enqueue(id, job_type, priority, run_at, now)
return 1
