-- purge: deletes the given jobs that are finished with a status in the list and completed before a time.
-- KEYS[1] expiry key
-- ARGV[1] completed-before ms, ARGV[2] comma-separated statuses, ARGV[3] now ms,
-- ARGV[4] how long to remember that a job went (ms), ARGV[5..] job ids
-- Returns how many were deleted.
local before = tonumber(ARGV[1])
local allowed = {}
for status in string.gmatch(ARGV[2], '[^,]+') do allowed[status] = true end
local deleted = 0
for i = 5, #ARGV do
  local id = ARGV[i]
  local key = job_key(id)
  local job = job_fields(key, 'status', 'type', 'completed', 'tenant')
  if job[1] and allowed[job[1]] and job[3] and tonumber(job[3]) < before then
    drop_index(id, job[4], job[2], job[1])
    redis.call('ZREM', EXPIRY_KEY, id)
    redis.call('DEL', key, logs_key(id))
    tombstone(id, ARGV[3], job[4], ARGV[4])
    deleted = deleted + 1
  end
end
return deleted
