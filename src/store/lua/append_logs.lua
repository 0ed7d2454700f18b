-- append_logs: adds a job's log lines, keeping the last `max`; they expire with the job (now if it is finished,
-- else when it finishes: `lg` on the job tells finalize there are lines).
-- KEYS[1] the job's logs key
-- ARGV[1] job id, ARGV[2] max lines kept, ARGV[3..] lines (JSON)
local key, id = KEYS[1], ARGV[1]
redis.call('RPUSH', key, unpack(ARGV, 3))
redis.call('LTRIM', key, -tonumber(ARGV[2]), -1)
local job = job_fields(job_key(id), 'status', 'expires')
if job[2] then
  redis.call('PEXPIREAT', key, tonumber(job[2]) + 60000) -- finished already: they go when it goes
elseif job[1] then
  redis.call('HSET', job_key(id), 'lg', '1') -- finalize sets their expiry then
end
return 1
