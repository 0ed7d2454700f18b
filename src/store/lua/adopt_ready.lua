-- adopt_ready: moves ready jobs queued before the fair queue existed (one `ready:<type>` zset per type) into it, in
-- their order; run at start-up until it answers 0, so an upgrade with queued jobs loses none.
-- KEYS[1] types key (routing)
-- ARGV[1] most jobs to move in this call
-- Returns how many jobs it moved.
local moved, most = 0, tonumber(ARGV[1])
for _, job_type in ipairs(redis.call('SMEMBERS', TYPES_KEY)) do
  local legacy = legacy_ready_key(job_type)
  local ready = redis.call('ZRANGE', legacy, 0, most - moved - 1, 'WITHSCORES')
  for i = 1, #ready, 2 do
    local id = ready[i]
    local job = job_fields(job_key(id), 'status', 'tenant', 'ckey')
    if job[1] == 'queued' then enqueue_ready(id, job_type, job[2], job[3] or '', tonumber(ready[i + 1])) end
    redis.call('ZREM', legacy, id)
    moved = moved + 1
  end
  if moved >= most then break end
end
return moved
