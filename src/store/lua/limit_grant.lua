-- limit_grant: how many jobs of each limited type a claim across partitions may take, under the type's fleet-wide
-- limits; the grant is held at once, so concurrent claims on other partitions cannot take the same room.
-- Only used when the store has several partitions: with one, the claim checks the limits itself (claim-lib.lua).
-- KEYS[1] the partition table key (routes the call to the base partition's slot)
-- ARGV[1] now ms, ARGV[2] hold ms (the lease plus the clock margin), ARGV[3] lease id, ARGV[4] most wanted,
-- then per type four values: type, max concurrency (0 = none), rate max (0 = none), rate window ms.
-- Returns the time used, then the grant of each type, in order. The time never goes backwards (as common.lua's
-- monotonic_now): a grant never drops from a rate window a start that a grant before it counted, and the claim
-- stamps its jobs no earlier than this time (redis-job-store.ts), so every start is in the window it was checked in.
-- A held grant is a member 'g:<lease id>:<n>' of the type's running set (and of its rate window); limit_confirm
-- swaps it for the claimed job (or gives it back), and one never confirmed (its claimer died) drops out by its score.
local now = tonumber(ARGV[1])
local last = tonumber(redis.call('GET', CLOCK_KEY) or '0')
if last > now then now = last else redis.call('SET', CLOCK_KEY, now) end
local hold_until, lease_id, want = now + tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local grants = { now }
for i = 5, #ARGV, 4 do
  local job_type, max_running, rate_max, window = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local grant = want
  if max_running > 0 then
    local running = fleet_running_key(job_type)
    redis.call('ZREMRANGEBYSCORE', running, '-inf', '(' .. now)
    grant = math.min(grant, max_running - redis.call('ZCARD', running))
    redis.call('SADD', FLEET_LIMITED_KEY, job_type)
  end
  if rate_max > 0 then
    local rate = fleet_rate_key(job_type)
    -- The window is closed, [now - window, now], as in claim-lib.lua.
    redis.call('ZREMRANGEBYSCORE', rate, '-inf', '(' .. (now - window))
    grant = math.min(grant, rate_max - redis.call('ZCARD', rate))
  end
  if grant < 0 then grant = 0 end
  for n = 1, grant do
    local member = 'g:' .. lease_id .. ':' .. n
    if max_running > 0 then redis.call('ZADD', fleet_running_key(job_type), hold_until, member) end
    -- Counted as a start until limit_confirm puts it at its job's start time (which the claim stamps after the
    -- grant): held at the hold time meanwhile, so no later grant can miss it.
    if rate_max > 0 then redis.call('ZADD', fleet_rate_key(job_type), hold_until, member) end
  end
  if rate_max > 0 and grant > 0 then redis.call('PEXPIRE', fleet_rate_key(job_type), window * 2 + hold_until - now) end
  grants[#grants + 1] = grant
end
return grants
