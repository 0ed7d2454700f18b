-- limit_release: ended attempts give their places in their types' running sets back, after the partitions ended
-- them; idle workers of those types hear of the room.
-- KEYS[1] the partition table key
-- ARGV pairs (job id, lease id).
local types = redis.call('SMEMBERS', FLEET_LIMITED_KEY)
local freed = {}
for i = 1, #ARGV, 2 do
  local member = ARGV[i] .. ' ' .. ARGV[i + 1]
  for _, job_type in ipairs(types) do
    if redis.call('ZREM', fleet_running_key(job_type), member) == 1 then freed[job_type] = true end
  end
end
for job_type in pairs(freed) do redis.call(PUBLISH_COMMAND, EVENTS_CHANNEL, cjson.encode({ kind = 'work', type = job_type })) end
return 1
