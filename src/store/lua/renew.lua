-- renew: extends the leases a worker holds.
-- KEYS[1] leases key
-- ARGV[1] now ms, ARGV[2] lease ms, ARGV[3..] job id, lease id pairs
-- Returns { ids whose lease is no longer held (reclaimed, finished, deleted), ids asked to cancel }.
local lease_until = tonumber(ARGV[1]) + tonumber(ARGV[2])
local lost, cancel = {}, {}
for i = 3, #ARGV, 2 do
  local id, lease_id = ARGV[i], ARGV[i + 1]
  local key = job_key(id)
  local job = job_fields(key, 'status', 'lease', 'cancel')
  if job[1] == 'running' and job[2] == lease_id then
    redis.call('HSET', key, 'lease_until', lease_until)
    redis.call('ZADD', LEASES_KEY, lease_until, id)
    if job[3] == '1' then cancel[#cancel + 1] = id end
  else
    lost[#lost + 1] = id
  end
end
return { lost, cancel }
