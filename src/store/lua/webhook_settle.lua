-- webhook_settle: ends one attempt of a webhook delivery, and shows it on the job.
-- KEYS[1] job key
-- ARGV[1] delivery id, ARGV[2] job id, ARGV[3] 'retry' (ARGV[4] = when) or 'done' (delivered or given up),
-- ARGV[5] delivery state JSON for the job's `wh_st`, ARGV[6] now ms, ARGV[7] attempts made
local key, delivery, id, now = KEYS[1], ARGV[1], ARGV[2], ARGV[6]
if ARGV[3] == 'retry' and redis.call('EXISTS', webhook_key(delivery)) == 1 then
  redis.call('HSET', webhook_key(delivery), 'attempts', ARGV[7])
  redis.call('ZADD', WEBHOOKS_DUE_KEY, tonumber(ARGV[4]), delivery)
  publish('{"kind":"webhook"}')
else
  redis.call('DEL', webhook_key(delivery))
  redis.call('ZREM', WEBHOOKS_DUE_KEY, delivery)
end
-- The job shows its last delivery, as a change of the job (new version, watchers told), in either form.
local version = redis.pcall('HGET', key, 'ver')
if type(version) == 'table' and version.err then
  local values = cjson.decode(redis.call('GET', key))
  for i = 1, #PACKED_FIELDS do
    if values[i] == nil then values[i] = false end -- packed before the field existed
  end
  local next_version = tonumber(values[PACKED_INDEX['ver']]) + 1
  values[PACKED_INDEX['ver']] = tostring(next_version)
  values[PACKED_INDEX['updated']] = now
  values[PACKED_INDEX['wh_st']] = ARGV[5]
  redis.call('SET', key, cjson.encode(values), 'KEEPTTL')
  redis.call(PUBLISH_COMMAND, changed_channel(id), next_version)
elseif version then
  local next_version = tonumber(version) + 1
  redis.call('HSET', key, 'wh_st', ARGV[5], 'ver', next_version, 'updated', now)
  redis.call(PUBLISH_COMMAND, changed_channel(id), next_version)
end
return 1
