-- acquire: take a lane and reserve its credits in one step, or queue for a lane.
-- ARGV: id, holder, cost, floor, lease (ms), ticket lifetime (ms), ttl
-- Replies (a, b):
--   GRANTED (deadline, reserved)  the permit is ours (also when asked again: idempotent)
--   WAIT    (position, 0)         queued; a holder's poll refreshes its ticket
--   CREDITS                       a lane is free but the credits do not fit
--   GONE                          this id was abandoned or expired: use a new one
--   NOLEDGER                      the account's state is gone (expired or flushed)
local id, holder = ARGV[1], ARGV[2]
local cost, floor, lease = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local ticket_ms, ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local now = clock()
local L = load_ledger()
if not L then
  return 'NOLEDGER'
end
housekeeping(L, now)
local status, a, b = 'WAIT', 0, 0
local p = redis.call('HGET', K_PERMITS, id)
if p then
  local _, reserved, deadline = parse_permit(p)
  status, a, b = 'GRANTED', deadline, reserved
else
  local reason = redis.call('HGET', K_DONE, id)
  if reason == 'credits' then
    status = 'CREDITS'
  elseif reason then
    status = 'GONE'
  elseif redis.call('HEXISTS', K_TICKETS, id) == 1 then
    redis.call('ZADD', K_TEXP, int(now + ticket_ms), id)
    a = redis.call('ZRANK', K_QUEUE, id)
  elseif L.lanes - count(3) > 0 and count(4) == 0 then
    if fits(L, cost, floor) then
      status, a, b = 'GRANTED', grant(L, id, holder, cost, now, lease), cost
    else
      status = 'CREDITS'
      L.cwait = now + CREDIT_WAIT_MS
    end
  else
    add_ticket(L, id, holder, cost, floor, lease, now + ticket_ms)
    a = count(4) - 1
  end
end
save_ledger(L)
keep(ttl)
return reply(status, a, b, 0, L, now)
