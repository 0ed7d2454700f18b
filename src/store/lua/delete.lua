-- delete: removes a job, its result and its index entries; a running job's worker is signalled.
-- KEYS[1] job key
-- ARGV[1] job id, ARGV[2] now ms, ARGV[3] how long to remember that it went (ms)
-- Returns 1 when a live job was removed, else 0.
local key, id, now = KEYS[1], ARGV[1], tonumber(ARGV[2])
local job = job_fields(key, 'status', 'type', 'expires', 'tenant', 'cache', 'ckey')
if not job[1] then return 0 end
if job[5] and (job[1] == 'queued' or job[1] == 'running') then
  -- A leader that will never finish: its followers run on their own.
  local values = {}
  values[PACKED_INDEX['cache']] = job[5]
  settle_followers(id, 'canceled', values, now, 0)
end
local live = not is_expired(job[3], now)
drop_index(id, job[4], job[2], job[1])
if job[1] == 'queued' then dequeue_ready(id, job[2], job[4], job[6] or '') end
if job[1] == 'running' then stopped_running(job[2], job[4], job[6]) end
redis.call('ZREM', delayed_key(job[2]), id)
redis.call('ZREM', LEASES_KEY, id)
redis.call('ZREM', EXPIRY_KEY, id)
if job[1] == 'running' then publish('{"kind":"cancel","jobId":"' .. id .. '"}') end
redis.call('DEL', key, logs_key(id))
redis.call(PUBLISH_COMMAND, changed_channel(id), 'gone')
if live then
  tombstone(id, now, job[4], ARGV[3])
  return 1
end
return 0
