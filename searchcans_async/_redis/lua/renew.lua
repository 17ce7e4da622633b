-- renew: the heartbeat. Extend the leases this holder still has; a lease that already
-- ended is not revived (its lane may be someone else's now). Also the housekeeping a
-- quiet account needs: ended leases go back, dead waiters leave, old tombstones go.
-- ARGV: holder, lease (ms), ttl, id... Reply a: the new deadline per id (0: lost).
local holder, lease, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = clock()
local L = load_ledger()
if not L then
  return 'NOLEDGER'
end
expire_leases(L, now)
local deadlines = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local p = redis.call('HGET', K_PERMITS, id)
  local deadline = 0
  if p then
    local owner, reserved, _, tokens = parse_permit(p)
    if owner == holder then
      deadline = now + lease
      put_permit(id, owner, reserved, deadline, tokens)
    end
  end
  deadlines[#deadlines + 1] = int(deadline)
end
drop_dead_tickets(now)
hand_off(L, now)
local old = redis.call('ZRANGEBYSCORE', K_DONET, '-inf', int(now - ttl), 'LIMIT', 0, 1000)
for _, id in ipairs(old) do
  redis.call('ZREM', K_DONET, id)
  redis.call('HDEL', K_DONE, id)
end
save_ledger(L)
keep(ttl, true)
return reply('RENEWED', table.concat(deadlines, ','), 0, 0, L, now)
