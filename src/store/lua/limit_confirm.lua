-- limit_confirm: after a claim across partitions, each held grant becomes the job it was used for (held until its
-- lease ends, plus the clock margin) or is given back.
-- KEYS[1] the partition table key
-- ARGV[1] lease id, ARGV[2] clock margin ms, then per type: type, granted, concurrency-limited ('1'/'0'),
-- rate-limited ('1'/'0'), claimed count k, then k triples (job id, lease end ms, start ms).
local lease_id, margin = ARGV[1], tonumber(ARGV[2])
local i = 3
while i <= #ARGV do
  local job_type, granted, limited, rated, k = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2] == '1', ARGV[i + 3] == '1', tonumber(ARGV[i + 4])
  i = i + 5
  for n = 1, granted do
    local member = 'g:' .. lease_id .. ':' .. n
    if limited then redis.call('ZREM', fleet_running_key(job_type), member) end
    if rated then
      -- A rate window counts starts: a grant used stays, at the time its job started (the partition's clock may
      -- stamp it a little after the grant); one not used is given back.
      if n <= k then
        redis.call('ZADD', fleet_rate_key(job_type), tonumber(ARGV[i + 3 * (n - 1) + 2]), member)
      else
        redis.call('ZREM', fleet_rate_key(job_type), member)
      end
    end
  end
  for j = 0, k - 1 do
    if limited then
      redis.call('ZADD', fleet_running_key(job_type), tonumber(ARGV[i + 3 * j + 1]) + margin, ARGV[i + 3 * j] .. ' ' .. lease_id)
    end
  end
  i = i + 3 * k
end
return 1
