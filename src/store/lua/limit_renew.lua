-- limit_renew: the held leases keep their places in their types' running sets until the new lease end (plus the
-- clock margin). Sent before the partitions renew the leases themselves: a place never ends before its lease.
-- KEYS[1] the partition table key
-- ARGV[1] hold until ms, then pairs (job id, lease id).
local hold_until = tonumber(ARGV[1])
local types = redis.call('SMEMBERS', FLEET_LIMITED_KEY)
if #types == 0 then return 0 end
for i = 2, #ARGV, 2 do
  local member = ARGV[i] .. ' ' .. ARGV[i + 1]
  for _, job_type in ipairs(types) do redis.call('ZADD', fleet_running_key(job_type), 'XX', 'GT', hold_until, member) end
end
return 1
