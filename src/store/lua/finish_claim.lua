-- finish_claim: ends several attempts and then leases more jobs, in one call, so a worker's completions
-- and its next claim share one round trip (the pool sends whatever finished while the last call ran).
-- KEYS[1] leases key (routing)
-- ARGV[1] now ms, ARGV[2] ttl ms, ARGV[3] n, then n times six values: job id, lease id, outcome,
-- payload, run_at, capped (as for finish.lua); then the claim: max jobs (0 = claim nothing), lease ms,
-- lease id, worker id, lease-expired error JSON, poison-after count, poison error JSON, per-type quadruples (as for claim.lua)
-- Returns { finish results in order (each { status, version } or 0 when the lease is not held), claimed jobs }
local now, ttl_ms, n = monotonic_now(tonumber(ARGV[1])), tonumber(ARGV[2]), tonumber(ARGV[3])
local results = {}
local i = 4
for _ = 1, n do
  results[#results + 1] = finish_job(ARGV[i], ARGV[i + 1], ARGV[i + 2], now, ttl_ms, ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
  i = i + 6
end
local max = tonumber(ARGV[i])
local claimed = {}
if max > 0 then
  claimed = claim_jobs(now, tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], max, ttl_ms, ARGV[i + 4], tonumber(ARGV[i + 5]), ARGV[i + 6], ARGV, i + 7)
end
return { results, claimed }
