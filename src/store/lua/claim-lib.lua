-- Claim logic shared by claim.lua and finish_claim.lua (see claim.lua for the arguments).
-- `argv` holds, from index `first`: the number of tenant weights, that many (tenant, weight) pairs, then six values per
-- type (see claim.lua).
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
  local weights = {}
  local n_weights = tonumber(argv[first])
  for i = first + 1, first + 2 * n_weights, 2 do weights[argv[i]] = tonumber(argv[i + 1]) end
  local types, budget, rate_window, key_cap = {}, {}, {}, {}
  for i = first + 1 + 2 * n_weights, #argv, 6 do
    local job_type = argv[i]
    local max_running, rate_max, window = tonumber(argv[i + 1]), tonumber(argv[i + 2]), tonumber(argv[i + 3])
    types[#types + 1] = job_type
    key_cap[job_type] = tonumber(argv[i + 4])
    local delayed = delayed_key(job_type)
    local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1000)
    for j = 1, #due, 2 do
      local id = due[j]
      local job = job_fields(job_key(id), 'prio', 'tenant', 'ckey')
      if job[1] then
        enqueue_ready(id, job_type, job[2], job[3] or '', ready_score(tonumber(job[1]), tonumber(due[j + 1])))
      end
      redis.call('ZREM', delayed, id)
    end
    local allowed = max
    local granted = tonumber(argv[i + 5])
    if granted > 0 then allowed = math.min(allowed, granted) end
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

  -- 3. Jobs in turn (fair-queue.lua), across the types by ready score: while the tenants in turn hold no keyed flows,
  -- a type's next turns are planned at once (plan_turns), else taken one at a time (next_in_turn, took_turn).
  local next_of = {}
  local claimed = {}
  local function refill(job_type)
    next_of[job_type] = nil
    if budget[job_type] <= 0 then return end
    local turns = plan_turns(job_type, math.min(budget[job_type], max - #claimed), weights)
    if turns and turns[1] then
      next_of[job_type] = { turns = turns, at = 1 }
      return
    end
    local id, score, tenant, ckey = next_in_turn(job_type, key_cap[job_type])
    if id then next_of[job_type] = { id = id, score = score, tenant = tenant, ckey = ckey } end
  end
  -- A plan's tenants take their places once, for the turns taken.
  local function end_plan(job_type)
    local entry = next_of[job_type]
    if entry and entry.turns and entry.at > 1 then end_turns(job_type, entry.turns, entry.at - 1) end
  end
  local function candidate(job_type)
    local entry = next_of[job_type]
    if not entry then return nil end
    if entry.turns then return entry.turns[entry.at].id, entry.turns[entry.at].score end
    return entry.id, entry.score
  end
  for _, job_type in ipairs(types) do refill(job_type) end

  local lease_until = now + lease_ms
  while #claimed < max do
    local best_type, best_id, best_score = nil, nil, nil
    for _, job_type in ipairs(types) do
      local id, score = candidate(job_type)
      if id and (not best_id or score < best_score or (score == best_score and id < best_id)) then
        best_type, best_id, best_score = job_type, id, score
      end
    end
    if not best_type then break end
    local job_type, id, entry = best_type, best_id, next_of[best_type]
    local key = job_key(id)
    local job = job_fields(key, 'status', 'attempt', 'ver', 'tenant', 'wh', 'ckey', 'fk')
    if entry.turns then
      redis.call('ZREM', flow_key(job_type, entry.turns[entry.at].tenant, ''), id)
      entry.at = entry.at + 1
    elseif job[1] == 'queued' then
      took_turn(job_type, id, entry.tenant, entry.ckey, job[7] == '1', key_cap[job_type], weights[entry.tenant] or 1)
    else
      dequeue_ready(id, job_type, entry.tenant, entry.ckey) -- not queued: a stale entry
    end
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
    if not entry.turns or entry.at > #entry.turns or budget[job_type] <= 0 then
      end_plan(job_type)
      refill(job_type)
    end
  end
  for _, job_type in ipairs(types) do end_plan(job_type) end
  return claimed
end
