-- read: a job's fields in one call, whichever form they have (a hash while the job is active, one packed
-- string once it finished), so a status read never sends a command of the wrong type.
-- KEYS[1] job key
-- Returns the packed string, the flat HGETALL of the hash, or false when there is no such job.
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'string' then return redis.call('GET', KEYS[1]) end
if kind == 'hash' then return redis.call('HGETALL', KEYS[1]) end
return false
