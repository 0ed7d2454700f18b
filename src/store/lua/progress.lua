-- progress: records a running attempt's progress, fenced by its lease.
-- KEYS[1] job key
-- ARGV[1] lease id, ARGV[2] now ms, ARGV[3] percent or '' (unchanged), ARGV[4] step or '' (unchanged),
-- ARGV[5] message or '' (unchanged), ARGV[6] job id, ARGV[7] least ms between two job.progress webhooks
-- Percent never decreases within an attempt and stays at most 99 until the job succeeds.
-- Returns the new version, or 0 when the lease is not held.
local key, lease_id, now = KEYS[1], ARGV[1], ARGV[2]
local job = job_fields(key, 'status', 'lease', 'pct', 'type', 'ver', 'wh', 'wh_p')
if job[1] ~= 'running' or job[2] ~= lease_id then return 0 end
local fields = { 'p_at', now }
if ARGV[3] ~= '' then
  local pct = math.min(99, math.max(0, math.floor(tonumber(ARGV[3]))))
  if job[3] then pct = math.max(pct, tonumber(job[3])) end
  fields[#fields + 1] = 'pct'
  fields[#fields + 1] = pct
end
if ARGV[4] ~= '' then
  fields[#fields + 1] = 'step'
  fields[#fields + 1] = ARGV[4]
end
if ARGV[5] ~= '' then
  fields[#fields + 1] = 'msg'
  fields[#fields + 1] = ARGV[5]
end
local version = change(key, ARGV[6], job[4], 'running', 'running', now, job[5], fields)
-- job.progress webhooks: at most one per WEBHOOK_PROGRESS_INTERVAL_MS (ARGV[7]).
if job[6] and (not job[7] or tonumber(now) - tonumber(job[7]) >= tonumber(ARGV[7])) then
  if queue_webhook(ARGV[6], job[6], 'job.progress', version, tonumber(now), function() return packed_snapshot(key) end) then
    redis.call('HSET', key, 'wh_p', now)
  end
end
return version
