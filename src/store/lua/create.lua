-- create: stores a new queued job; with an idempotency key, only if the key names no job yet; with a cache
-- key (result reuse), answered from a job that succeeded, or made to follow one still queued or running.
-- KEYS[1] job key
-- ARGV[1] id, ARGV[2] type, ARGV[3] priority, ARGV[4] run_at ms, ARGV[5] now ms,
-- ARGV[6] idempotency key name ('' = none), ARGV[7] request fingerprint, ARGV[8] how long the key is kept (ms),
-- ARGV[9] most active (queued or running) jobs the tenant may have (0 = no limit), ARGV[10] tenant,
-- ARGV[11] cache key name ('' = no reuse), ARGV[12] 'reuse' or 'refresh' (Cache-Control: no-cache: run, and be
-- the job later submits reuse), ARGV[13] cache TTL ms, ARGV[14] job TTL ms, ARGV[15] concurrency key ('' = none),
-- ARGV[16..] field, value pairs for the job hash
-- Returns { 'created' } (a plain new queued job), { 'reused', flat fields of the new job } (already succeeded,
-- or following another), { 'replayed', flat fields of the job the key names }, { 'key-reused' } when the key
-- names a job made from another request, or { 'too-many-active', count } (nothing stored).
local key, id, job_type = KEYS[1], ARGV[1], ARGV[2]
local priority, run_at, now = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local idempotency_key, fingerprint = ARGV[6], ARGV[7]
if idempotency_key ~= '' then
  local existing = redis.call('GET', idempotency_key)
  if existing then
    local space = string.find(existing, ' ', 1, true)
    if string.sub(existing, space + 1) ~= fingerprint then return { 'key-reused' } end
    local existing_key = job_key(string.sub(existing, 1, space - 1))
    if redis.call('EXISTS', existing_key) == 1 then return { 'replayed', job_flat(existing_key) } end
    -- The job it named was deleted or expired: the key now names the new one.
  end
end

-- Result reuse: the job the cache key names, if it succeeded within the TTL (a hit) or is still active.
local cache_key, cache_ttl, job_ttl = ARGV[11], tonumber(ARGV[13]), tonumber(ARGV[14])
local leader, leader_status, leader_result = nil, nil, nil
if cache_key ~= '' and ARGV[12] == 'reuse' then
  local named = redis.call('GET', cache_key)
  if named then
    local found = job_fields(job_key(named), 'status', 'completed', 'result', 'expires')
    if found[1] == 'succeeded' and not is_expired(found[4], now) and tonumber(found[2]) >= now - cache_ttl then
      leader, leader_status, leader_result = named, 'succeeded', found[3]
    elseif found[1] == 'queued' or found[1] == 'running' then
      leader, leader_status = named, found[1]
    end
  end
end

local max_active, tenant = tonumber(ARGV[9]), ARGV[10]
if max_active > 0 and leader_status ~= 'succeeded' then
  local active = active_jobs_of(tenant)
  if active >= max_active then return { 'too-many-active', active } end
end
if idempotency_key ~= '' then redis.call('SET', idempotency_key, id .. ' ' .. fingerprint, 'PX', ARGV[8]) end
redis.call('HSET', key, unpack(ARGV, 16))
redis.call('ZADD', index_key('queued', job_type), 0, id)
if tenant ~= OPEN_TENANT then
  redis.call('ZADD', tenant_index_key(tenant, 'queued', job_type), 0, id)
  redis.call('SADD', TENANTS_KEY, tenant)
end
redis.call('SADD', TYPES_KEY, job_type)
if leader_status == 'succeeded' then
  finalize(key, id, job_type, 'queued', 'succeeded', now, job_ttl, 1, {
    'result', leader_result, 'pct', '100', 'p_at', tostring(now), 'cached_from', leader,
  })
  return { 'reused', job_flat(key) }
elseif leader then
  -- Follows the leader: not queued for a worker; the leader's finish ends it (settle_followers).
  redis.call('HSET', key, 'cached_from', leader)
  redis.call('SADD', followers_key(leader), id)
  return { 'reused', job_flat(key) }
end
if cache_key ~= '' then
  redis.call('SET', cache_key, id)
  redis.call('HSET', key, 'cache', cache_key .. ' ' .. cache_ttl)
end
enqueue(id, job_type, priority, run_at, now, { tenant, ARGV[15] ~= '' and ARGV[15] or false })
return { 'created' }
