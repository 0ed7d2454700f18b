-- sweep: drops expired jobs from the listing indexes (Redis has usually expired their hash already)
-- and forgets per-second finish counts older than two minutes.
-- KEYS[1] expiry key
-- ARGV[1] now ms, ARGV[2] batch size, ARGV[3] comma-separated terminal statuses,
-- ARGV[4] how long to remember that an expired job went (ms)
-- Returns how many expired jobs were dropped.
local now, batch = tonumber(ARGV[1]), tonumber(ARGV[2])
local terminal = {}
for status in string.gmatch(ARGV[3], '[^,]+') do terminal[#terminal + 1] = status end
local expired = redis.call('ZRANGEBYSCORE', EXPIRY_KEY, '-inf', now, 'WITHSCORES', 'LIMIT', 0, batch)
local types = nil
for n = 1, #expired, 2 do
  local id = expired[n]
  local key = job_key(id)
  local job = job_fields(key, 'status', 'type', 'tenant')
  tombstone(id, expired[n + 1], job[3] or nil, ARGV[4])
  if job[1] then
    drop_index(id, job[3], job[2], job[1])
    redis.call('DEL', key)
  else
    -- Redis dropped the key first (its grace minute passed with no sweep): every index it could be in.
    types = types or redis.call('SMEMBERS', TYPES_KEY)
    local tenants = redis.call('SMEMBERS', TENANTS_KEY)
    for _, job_type in ipairs(types) do
      for _, status in ipairs(terminal) do
        redis.call('ZREM', index_key(status, job_type), id)
        for _, tenant in ipairs(tenants) do redis.call('ZREM', tenant_index_key(tenant, status, job_type), id) end
      end
    end
  end
  redis.call('ZREM', EXPIRY_KEY, id)
end
local oldest = math.floor(now / 1000) - 120
for _, second in ipairs(redis.call('HKEYS', FINISHED_KEY)) do
  if tonumber(second) < oldest then redis.call('HDEL', FINISHED_KEY, second) end
end
return #expired / 2
