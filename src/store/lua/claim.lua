-- claim: recovers lapsed leases, promotes due delayed jobs, then leases up to `max` ready jobs.
-- KEYS[1] leases key (routes the call to the right node in a cluster)
-- ARGV[1] now ms, ARGV[2] lease ms, ARGV[3] lease id, ARGV[4] worker id, ARGV[5] max jobs,
-- ARGV[6] ttl ms for jobs a lapsed lease fails, ARGV[7] lease-expired error JSON,
-- ARGV[8] poison after this many lapsed leases (0 = never), ARGV[9] poison error JSON,
-- ARGV[10] how many tenant weights, then that many (tenant, weight) pairs, then per job type six values: type, max
-- concurrency (0 = none), rate max (0 = none), rate window ms, key concurrency (0 = none), most jobs of the type in this
-- call (0 = no such cap: a fleet-wide limit's grant when the store is partitioned)
-- Returns an array of claimed jobs, each the flat HGETALL of its hash.
return claim_jobs(monotonic_now(tonumber(ARGV[1])), tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7],
  tonumber(ARGV[8]), ARGV[9], ARGV, 10)
