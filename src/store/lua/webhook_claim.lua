-- webhook_claim: hands out up to `max` due webhook deliveries, each leased until now + lease ms (an instance
-- that dies while sending one leaves it to be sent again when the lease lapses).
-- KEYS[1] the due-deliveries key
-- ARGV[1] now ms, ARGV[2] max, ARGV[3] lease ms
-- Returns { { delivery id, flat HGETALL of the delivery }..., next due ms or false }.
local now, max, lease_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local handed = {}
for _, delivery in ipairs(redis.call('ZRANGEBYSCORE', WEBHOOKS_DUE_KEY, '-inf', now, 'LIMIT', 0, max)) do
  local fields = redis.call('HGETALL', webhook_key(delivery))
  if #fields == 0 then
    redis.call('ZREM', WEBHOOKS_DUE_KEY, delivery) -- expired unsettled: nothing left to send
  else
    redis.call('ZADD', WEBHOOKS_DUE_KEY, now + lease_ms, delivery)
    handed[#handed + 1] = { delivery, fields }
  end
end
local head = redis.call('ZRANGE', WEBHOOKS_DUE_KEY, 0, 0, 'WITHSCORES')
local next_due = false
if #head == 2 then next_due = head[2] end
return { handed, next_due }
