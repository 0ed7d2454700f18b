-- append_logs: adds a job's log lines, keeping the last `max`; lines of a finished job expire with it.
-- KEYS[1] the job's logs key
-- ARGV[1] job id, ARGV[2] max lines kept, ARGV[3..] lines (JSON)
local key, id = KEYS[1], ARGV[1]
redis.call('RPUSH', key, unpack(ARGV, 3))
redis.call('LTRIM', key, -tonumber(ARGV[2]), -1)
local expires = job_fields(job_key(id), 'expires')[1]
if expires then redis.call('PEXPIREAT', key, tonumber(expires) + 60000) end
return 1
