-- import: writes a job exported from another store, keeping its id, state and result.
-- KEYS[1] job key
-- ARGV[1] id, ARGV[2] type, ARGV[3] tenant, ARGV[4] status (queued, or a terminal one: running jobs come
-- in as queued), ARGV[5] priority, ARGV[6] run_at ms, ARGV[7] now ms, ARGV[8] expires ms (finished),
-- ARGV[9] the packed job (finished) or '', ARGV[10..] field, value pairs (active)
-- Returns 'imported', 'exists' (the id is taken) or 'expired' (a finished job past its expiry).
local key, id, job_type, tenant, status = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = tonumber(ARGV[7])
if redis.call('EXISTS', key) == 1 then return 'exists' end
if ARGV[9] ~= '' then
  local expires = tonumber(ARGV[8])
  if expires <= now then return 'expired' end
  redis.call('SET', key, ARGV[9], 'PXAT', expires + 60000)
  redis.call('ZADD', EXPIRY_KEY, expires, id)
else
  redis.call('HSET', key, unpack(ARGV, 10))
  enqueue(id, job_type, tonumber(ARGV[5]), tonumber(ARGV[6]), now)
end
redis.call('ZADD', index_key(status, job_type), 0, id)
if tenant ~= OPEN_TENANT then
  redis.call('ZADD', tenant_index_key(tenant, status, job_type), 0, id)
  redis.call('SADD', TENANTS_KEY, tenant)
end
redis.call('SADD', TYPES_KEY, job_type)
return 'imported'
