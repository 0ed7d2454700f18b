-- Claim logic shared by claim.lua and finish_claim.lua (see claim.lua for the arguments).
-- `argv` holds the per-type quadruples from index `first`.
local function claim_jobs(now, lease_ms, lease_id, worker_id, max, ttl_ms, lapsed_error, argv, first)
  -- 1. Lapsed leases, whatever their type: the worker holding them is gone or stuck.
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', LEASES_KEY, '-inf', now, 'LIMIT', 0, 100)) do
    local key = job_key(id)
    local job = redis.call('HMGET', key, 'status', 'type', 'attempt', 'max_att', 'cancel')
    redis.call('ZREM', LEASES_KEY, id)
    if job[1] == 'running' then
      if job[5] == '1' then
        finalize(key, id, job[2], 'running', 'canceled', now, ttl_ms)
      else
        redis.call('HSET', key, 'error', lapsed_error)
        if tonumber(job[3]) >= tonumber(job[4]) then
          finalize(key, id, job[2], 'running', 'failed', now, ttl_ms)
        else
          requeue(key, id, job[2], now, now)
        end
      end
    end
  end

  -- 2. Delayed jobs whose time has come become ready; each type's budget under its fleet-wide limits.
  local types, budget, rate_window = {}, {}, {}
  for i = first, #argv, 4 do
    local job_type = argv[i]
    local max_running, rate_max, window = tonumber(argv[i + 1]), tonumber(argv[i + 2]), tonumber(argv[i + 3])
    types[#types + 1] = job_type
    local delayed = delayed_key(job_type)
    local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1000)
    for j = 1, #due, 2 do
      local id = due[j]
      local priority = redis.call('HGET', job_key(id), 'prio')
      if priority then
        redis.call('ZADD', ready_key(job_type), ready_score(tonumber(priority), tonumber(due[j + 1])), id)
      end
      redis.call('ZREM', delayed, id)
    end
    local allowed = max
    if max_running > 0 then
      allowed = math.min(allowed, max_running - redis.call('ZCARD', index_key('running', job_type)))
    end
    if rate_max > 0 then
      local rate = rate_key(job_type)
      -- The window is closed, [now - window, now]: a claim exactly one window earlier still counts.
      redis.call('ZREMRANGEBYSCORE', rate, '-inf', '(' .. (now - window))
      allowed = math.min(allowed, rate_max - redis.call('ZCARD', rate))
      rate_window[job_type] = window
    end
    budget[job_type] = allowed
  end

  -- 3. Lease the best ready jobs across the types: lowest score, then lowest id.
  local heads = {}
  local function refresh_head(job_type)
    if budget[job_type] <= 0 then heads[job_type] = nil return end
    local head = redis.call('ZRANGE', ready_key(job_type), 0, 0, 'WITHSCORES')
    if head[1] then heads[job_type] = { id = head[1], score = tonumber(head[2]) } else heads[job_type] = nil end
  end
  for _, job_type in ipairs(types) do refresh_head(job_type) end

  local claimed = {}
  local lease_until = now + lease_ms
  while #claimed < max do
    local best_type, best = nil, nil
    for _, job_type in ipairs(types) do
      local head = heads[job_type]
      if head and (not best or head.score < best.score or (head.score == best.score and head.id < best.id)) then
        best_type, best = job_type, head
      end
    end
    if not best then break end
    local id, key = best.id, job_key(best.id)
    redis.call('ZREM', ready_key(best_type), id)
    local claimable = redis.call('HGET', key, 'status') == 'queued'
    if claimable then
      budget[best_type] = budget[best_type] - 1
      if rate_window[best_type] then
        redis.call('ZADD', rate_key(best_type), now, id .. ':' .. now)
        redis.call('PEXPIRE', rate_key(best_type), rate_window[best_type] * 2)
      end
    end
    refresh_head(best_type)
    if claimable then
      redis.call('HINCRBY', key, 'attempt', 1)
      redis.call('HDEL', key, 'pct', 'step', 'msg', 'p_at')
      redis.call('HSET', key, 'started', now, 'lease', lease_id, 'lease_until', lease_until, 'worker', worker_id)
      set_status(key, id, best_type, 'queued', 'running')
      touch(key, now)
      redis.call('ZADD', LEASES_KEY, lease_until, id)
      claimed[#claimed + 1] = redis.call('HGETALL', key)
    end
  end
  return claimed
end
