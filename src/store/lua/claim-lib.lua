-- Claim logic shared by claim.lua and finish_claim.lua (see claim.lua for the arguments).
-- `argv` holds the per-type quadruples from index `first`.
-- `poison_after` (0 = never): a job whose worker died while running it that many times fails with `poison_error`.
local function claim_jobs(now, lease_ms, lease_id, worker_id, max, ttl_ms, lapsed_error, poison_after, poison_error, argv, first)
  -- 1. Lapsed leases, whatever their type: the worker holding them is gone or stuck.
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', LEASES_KEY, '-inf', now, 'LIMIT', 0, 100)) do
    local key = job_key(id)
    local job = job_fields(key, 'status', 'type', 'attempt', 'max_att', 'cancel', 'ver', 'prio', 'worker', 'started', 'atts', 'lapses')
    redis.call('ZREM', LEASES_KEY, id)
    if job[1] == 'running' then
      local lapses = tonumber(job[11] or '0') + 1
      if job[5] == '1' then
        finalize(key, id, job[2], 'running', 'canceled', now, ttl_ms, job[6], {
          'atts', with_attempt(job[10], job[3], job[8], job[9], now, 'canceled', lapsed_error),
        })
      elseif poison_after > 0 and lapses >= poison_after then
        finalize(key, id, job[2], 'running', 'failed', now, ttl_ms, job[6], {
          'error', poison_error, 'atts', with_attempt(job[10], job[3], job[8], job[9], now, 'poison', lapsed_error),
        })
      elseif tonumber(job[3]) >= tonumber(job[4]) then
        finalize(key, id, job[2], 'running', 'failed', now, ttl_ms, job[6], {
          'error', lapsed_error, 'atts', with_attempt(job[10], job[3], job[8], job[9], now, 'lease-expired', lapsed_error),
        })
      else
        requeue(key, id, job[2], job[7], now, now, job[6], {
          'error', lapsed_error, 'lapses', lapses, 'atts', with_attempt(job[10], job[3], job[8], job[9], now, 'lease-expired', lapsed_error),
        })
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
      local priority = job_fields(job_key(id), 'prio')[1]
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

  -- 3. The best ready jobs across the types (lowest score, then lowest id): each type's first `budget`
  -- candidates are read in one call and merged here.
  local candidates = {}
  for _, job_type in ipairs(types) do
    if budget[job_type] > 0 then
      local head = redis.call('ZRANGE', ready_key(job_type), 0, budget[job_type] - 1, 'WITHSCORES')
      for j = 1, #head, 2 do
        candidates[#candidates + 1] = { id = head[j], score = tonumber(head[j + 1]), type = job_type }
      end
    end
  end
  if #types > 1 then
    table.sort(candidates, function(a, b)
      if a.score ~= b.score then return a.score < b.score end
      return a.id < b.id
    end)
  end

  local claimed = {}
  local lease_until = now + lease_ms
  for _, candidate in ipairs(candidates) do
    if #claimed >= max then break end
    local id, job_type = candidate.id, candidate.type
    if budget[job_type] > 0 then
      local key = job_key(id)
      redis.call('ZREM', ready_key(job_type), id)
      local job = job_fields(key, 'status', 'attempt', 'ver', 'tenant', 'wh')
      if job[1] == 'queued' then
        budget[job_type] = budget[job_type] - 1
        if rate_window[job_type] then
          redis.call('ZADD', rate_key(job_type), now, id .. ':' .. now)
          redis.call('PEXPIRE', rate_key(job_type), rate_window[job_type] * 2)
        end
        -- No progress to clear: a queued job has none (requeue and retry remove it).
        local version = change(key, id, job_type, 'queued', 'running', now, job[3], {
          'attempt', tonumber(job[2]) + 1, 'started', now, 'lease', lease_id, 'lease_until', lease_until, 'worker', worker_id,
        }, job[4])
        redis.call('ZADD', LEASES_KEY, lease_until, id)
        if job[5] then queue_webhook(id, job[5], 'job.started', version, now, function() return packed_snapshot(key) end) end
        claimed[#claimed + 1] = redis.call('HGETALL', key)
      end
    end
  end
  return claimed
end
