-- finish: ends a running attempt, fenced by its lease. A cancel requested meanwhile wins.
-- KEYS[1] job key (routing)
-- ARGV[1] job id, ARGV[2] lease id, ARGV[3] outcome (succeeded|failed|retry|canceled|released),
-- ARGV[4] now ms, ARGV[5] ttl ms, ARGV[6] result JSON (succeeded) or error JSON (failed, retry),
-- ARGV[7] run_at ms (retry), ARGV[8] '1' when the type has a fleet-wide concurrency limit: then a
-- finish signals 'work' while jobs of the type wait, since the freed slot may be another instance's to use
-- Returns { status, version }, or 0 when the lease is not held.
return finish_job(ARGV[1], ARGV[2], ARGV[3], monotonic_now(tonumber(ARGV[4])), tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8])
