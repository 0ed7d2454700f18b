-- The fair queue: where a ready job waits and in which order claims take ready jobs (the rule is stated in
-- job-store.ts, "Claim order"; memory-fair-queue.ts is the memory store's copy of these steps, and the shared
-- contract suite holds both to the same order). Keys per type T (redis-keys.ts):
--   fq:T:<tenant>:<key>  a flow: one tenant's ready jobs with one concurrency key ('' = none), by ready score
--   ft:T:<tenant>        the tenant's flows a claim may take from, by their head's band, then the head's run_at
--                        (or, for fair_by key jobs, the key's round: keys take turns)
--   fr:T                 the tenants with such a flow, by their best band, then their round (tenants take turns)
--   fh:T                 'c:<tenant>': claims a tenant of weight > 1 took in its current round
--   krun:T, kcap:T       running jobs per '<tenant>\n<key>', and the flows held back at their key's cap
-- Every step is O(log n) in the jobs, flows and tenants of the type: a claim never scans tenants or keys.

local PRIORITY_BAND = 4398046511104 -- 2^42: ready score = (100 - priority) * 2^42 + run_at ms; rounds stay below it

local function ready_score(priority, run_at)
  return (100 - priority) * PRIORITY_BAND + run_at
end

local function band_of(score)
  return math.floor(score / PRIORITY_BAND)
end

-- The part of a score below its band: a run_at, or a round.
local function low_of(score)
  return score - band_of(score) * PRIORITY_BAND
end

local function flow_name(tenant, ckey)
  return tenant .. '\n' .. ckey
end

-- The round a tenant (or key) that joins `band` of a rotation zset starts at: the lowest round there, so it waits for
-- at most one turn of each other member of its band, however many jobs they hold (0 in an empty band).
local function entry_round(rotation, band)
  local first = redis.call('ZRANGEBYSCORE', rotation, band * PRIORITY_BAND, '(' .. ((band + 1) * PRIORITY_BAND),
    'WITHSCORES', 'LIMIT', 0, 1)
  return first[2] and low_of(tonumber(first[2])) or 0
end

-- The tenant's place in the rotation once its flows changed: its best band; in that band, `round` when given (after
-- its claim), else the round it has, else (it joins the band) the band's entry round. `current`: its score in the
-- rotation (false: none), when the caller read it already.
local function place_tenant(job_type, tenant, round, current)
  local rotation = fair_tenants_key(job_type)
  local best = redis.call('ZRANGE', flows_key(job_type, tenant), 0, 0, 'WITHSCORES')
  if not best[1] then
    redis.call('ZREM', rotation, tenant)
    return
  end
  local band = band_of(tonumber(best[2]))
  if current == nil then current = redis.call('ZSCORE', rotation, tenant) end
  local same_band = current and band_of(tonumber(current)) == band
  if not (same_band and round) then
    if same_band then return end
    round = entry_round(rotation, band)
    redis.call('HDEL', fair_hash_key(job_type), 'c:' .. tenant)
  end
  redis.call('ZADD', rotation, band * PRIORITY_BAND + round, tenant)
end

-- The flow's place among its tenant's flows once its head changed: gone when empty, none while held back at its
-- key's cap. Keys of fair_by key jobs (the head's `fk`) take turns as tenants do; other flows are in their head's
-- order. `claimed`: { by_key = the claimed job's fk, round = its key's next round } right after a claim took from
-- the flow (which was claimable, so not held back): spares the reads of both.
local function place_flow(job_type, tenant, ckey, claimed)
  local flows = flows_key(job_type, tenant)
  local head = redis.call('ZRANGE', flow_key(job_type, tenant, ckey), 0, 0, 'WITHSCORES')
  if not head[1] then
    redis.call('ZREM', flows, ckey)
    if ckey ~= '' then redis.call('SREM', key_cap_key(job_type), flow_name(tenant, ckey)) end
    return
  end
  local by_key, round = nil, nil
  if claimed then
    by_key, round = claimed.by_key, claimed.round
  else
    if ckey ~= '' and redis.call('SISMEMBER', key_cap_key(job_type), flow_name(tenant, ckey)) == 1 then return end
    by_key = redis.call('HGET', job_key(head[1]), 'fk') == '1'
  end
  local score = tonumber(head[2])
  if by_key then
    local band = band_of(score)
    local current = redis.call('ZSCORE', flows, ckey)
    local same_band = current and band_of(tonumber(current)) == band
    if not same_band then
      round = entry_round(flows, band)
    elseif not round then
      round = low_of(tonumber(current))
    end
    score = band * PRIORITY_BAND + round
  end
  redis.call('ZADD', flows, score, ckey)
end

-- A job becomes ready (`score`: its ready score). Returns true when its tenant had nothing to claim before.
local function enqueue_ready(id, job_type, tenant, ckey, score)
  local flow = flow_key(job_type, tenant, ckey)
  redis.call('ZADD', flow, score, id)
  if redis.call('ZRANGE', flow, 0, 0)[1] ~= id then return false end
  local was_idle = redis.call('ZSCORE', fair_tenants_key(job_type), tenant) == false
  place_flow(job_type, tenant, ckey)
  place_tenant(job_type, tenant)
  return was_idle
end

-- A ready job leaves the queue without being claimed (canceled, deleted).
local function dequeue_ready(id, job_type, tenant, ckey)
  local flow = flow_key(job_type, tenant, ckey)
  local head = redis.call('ZRANGE', flow, 0, 0)[1]
  if redis.call('ZREM', flow, id) == 0 or head ~= id then return end
  place_flow(job_type, tenant, ckey)
  place_tenant(job_type, tenant)
end

-- Holds a flow back: its key has `key_cap` jobs running. It comes back when one of them ends (free_key_slot).
local function hold_back(job_type, tenant, ckey)
  redis.call('ZREM', flows_key(job_type, tenant), ckey)
  redis.call('SADD', key_cap_key(job_type), flow_name(tenant, ckey))
  place_tenant(job_type, tenant)
end

-- The job the next claim of `job_type` takes: the head of the best flow of the tenant whose turn it is, holding back
-- flows whose key is at `key_cap` (0 = no cap) on the way. Returns id, ready score, tenant, key; nil when none.
local function next_in_turn(job_type, key_cap)
  local rotation = fair_tenants_key(job_type)
  -- Each pass holds back a flow or drops a stale entry, so this ends; the bound keeps one call short.
  for _ = 1, 1000 do
    local tenant = redis.call('ZRANGE', rotation, 0, 0)[1]
    if not tenant then return nil end
    local ckey = redis.call('ZRANGE', flows_key(job_type, tenant), 0, 0)[1]
    if not ckey then
      redis.call('ZREM', rotation, tenant)
    elseif
      ckey ~= ''
      and key_cap > 0
      and tonumber(redis.call('HGET', key_running_key(job_type), flow_name(tenant, ckey)) or '0') >= key_cap
    then
      hold_back(job_type, tenant, ckey)
    else
      local head = redis.call('ZRANGE', flow_key(job_type, tenant, ckey), 0, 0, 'WITHSCORES')
      if head[1] then return head[1], tonumber(head[2]), tenant, ckey end
      place_flow(job_type, tenant, ckey)
      place_tenant(job_type, tenant)
    end
  end
  return nil
end

-- A claim took job `id` from its flow: the key's running count goes up (holding the flow back at `key_cap`), the key
-- (fair_by key: `by_key`) and the tenant take their next turn. `weight`: the tenant's claims per round.
local function took_turn(job_type, id, tenant, ckey, by_key, key_cap, weight)
  local flow = flow_key(job_type, tenant, ckey)
  redis.call('ZREM', flow, id)
  local at_cap = false
  if ckey ~= '' then
    local running = redis.call('HINCRBY', key_running_key(job_type), flow_name(tenant, ckey), 1)
    at_cap = key_cap > 0 and running >= key_cap
  end
  local flows = flows_key(job_type, tenant)
  if at_cap and redis.call('ZCARD', flow) > 0 then
    redis.call('ZREM', flows, ckey)
    redis.call('SADD', key_cap_key(job_type), flow_name(tenant, ckey))
  else
    local key_round = nil
    if by_key then
      local current = redis.call('ZSCORE', flows, ckey)
      key_round = (current and low_of(tonumber(current)) or 0) + 1
    end
    place_flow(job_type, tenant, ckey, { by_key = by_key, round = key_round })
  end
  local current = redis.call('ZSCORE', fair_tenants_key(job_type), tenant)
  local round = current and low_of(tonumber(current)) or 0
  if weight <= 1 then
    round = round + 1
  elseif redis.call('HINCRBY', fair_hash_key(job_type), 'c:' .. tenant, 1) >= weight then
    redis.call('HDEL', fair_hash_key(job_type), 'c:' .. tenant)
    round = round + 1
  end
  place_tenant(job_type, tenant, round, current)
end

-- Most tenants a claim plans its turns over at once (plan_turns); with more, it takes them one at a time.
local PLAN_TENANTS_MAX = 64

-- The next `state.chunk` queued jobs of a planned tenant's flow, after those read (the flow does not change while
-- a plan is made).
local function read_more(job_type, state)
  local from = #state.jobs / 2
  local more = redis.call('ZRANGE', flow_key(job_type, state.tenant, ''), from, from + state.chunk - 1, 'WITHSCORES')
  for _, value in ipairs(more) do state.jobs[#state.jobs + 1] = value end
  state.complete = #more < 2 * state.chunk
end

-- The turns of the next `want` claims of `job_type` while the tenants in turn each hold one flow without a key (the
-- common case), worked out from the rotation and each tenant's queued heads (read once, when its first turn
-- comes), in exactly the order next_in_turn and took_turn would take them one at a time, without writing. Each
-- turn is { id, score, tenant } and the tenant's state after it: band and round (its rotation score), credit, and
-- `active` (false: that was its last job). The plan stops before a tenant with keyed flows (the caller then goes
-- on one at a time); nil when the rotation holds more than PLAN_TENANTS_MAX tenants.
local function plan_turns(job_type, want, weights)
  local rotation = fair_tenants_key(job_type)
  -- One more than planned for reads whether there are too many.
  local members = redis.call('ZRANGE', rotation, 0, PLAN_TENANTS_MAX, 'WITHSCORES')
  if #members > 2 * PLAN_TENANTS_MAX then return nil end
  local states = {}
  for i = 1, #members, 2 do
    local score = tonumber(members[i + 1])
    states[#states + 1] = { tenant = members[i], band = band_of(score), round = low_of(score), active = true }
  end
  local turns = {}
  while #turns < want do
    local best = nil
    for _, state in ipairs(states) do
      if
        state.active
        and (
          not best
          or state.band < best.band
          or (state.band == best.band and (state.round < best.round or (state.round == best.round and state.tenant < best.tenant)))
        )
      then
        best = state
      end
    end
    if not best then break end
    if not best.jobs then
      local flows = redis.call('ZRANGE', flows_key(job_type, best.tenant), 0, 1)
      if #flows ~= 1 or flows[1] ~= '' then break end
      best.jobs, best.complete = {}, false
      best.weight = weights[best.tenant] or 1
      -- About its share of the plan at first (more when it gets more turns), and one job beyond: the head it is
      -- left with decides its band.
      best.chunk = math.min(want - #turns, math.ceil(want / #states) * best.weight) + 1
      read_more(job_type, best)
      if not best.jobs[1] then break end
      best.at = 1
      best.credit = best.weight > 1 and tonumber(redis.call('HGET', fair_hash_key(job_type), 'c:' .. best.tenant) or '0') or 0
    end
    local id, score = best.jobs[best.at], tonumber(best.jobs[best.at + 1])
    best.at = best.at + 2
    -- took_turn's rules: the round goes on after `weight` claims.
    if best.weight <= 1 then
      best.round = best.round + 1
    else
      best.credit = best.credit + 1
      if best.credit >= best.weight then
        best.credit = 0
        best.round = best.round + 1
      end
    end
    if best.at > #best.jobs and not best.complete then read_more(job_type, best) end
    if best.at > #best.jobs then
      best.active = false -- its flow is empty
    else
      -- place_tenant's rules: a new band is joined at its lowest round, with the credit reset.
      local band = band_of(tonumber(best.jobs[best.at + 1]))
      if band ~= best.band then
        local lowest = nil
        for _, state in ipairs(states) do
          if state ~= best and state.active and state.band == band and (not lowest or state.round < lowest) then
            lowest = state.round
          end
        end
        best.band, best.round, best.credit = band, lowest or 0, 0
      end
    end
    turns[#turns + 1] = {
      id = id, score = score, tenant = best.tenant, band = best.band, round = best.round, credit = best.credit,
      weight = best.weight, active = best.active,
    }
  end
  return turns
end

-- Writes the outcome of the first `taken` turns of a plan (their jobs already left their flows): each tenant's flow
-- and rotation place and credit as its last turn left them.
local function end_turns(job_type, turns, taken)
  local last = {}
  for i = 1, taken do last[turns[i].tenant] = turns[i] end
  for tenant, turn in pairs(last) do
    place_flow(job_type, tenant, '', { by_key = false })
    if turn.active then
      redis.call('ZADD', fair_tenants_key(job_type), turn.band * PRIORITY_BAND + turn.round, tenant)
    else
      redis.call('ZREM', fair_tenants_key(job_type), tenant)
    end
    if turn.weight > 1 then
      if turn.credit > 0 then
        redis.call('HSET', fair_hash_key(job_type), 'c:' .. tenant, turn.credit)
      else
        redis.call('HDEL', fair_hash_key(job_type), 'c:' .. tenant)
      end
    end
  end
end

-- A job with a concurrency key stopped running: its key has a free slot, and its flow, if held back, comes back.
-- Returns true when a flow came back (workers may be idle with nothing else to claim: the caller signals work).
local function free_key_slot(job_type, tenant, ckey)
  if not ckey or ckey == '' then return false end
  local name = flow_name(tenant, ckey)
  if redis.call('HINCRBY', key_running_key(job_type), name, -1) <= 0 then
    redis.call('HDEL', key_running_key(job_type), name)
  end
  if redis.call('SREM', key_cap_key(job_type), name) == 0 then return false end
  place_flow(job_type, tenant, ckey)
  place_tenant(job_type, tenant)
  return true
end
