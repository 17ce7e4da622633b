-- release: give a lane back and settle its reservation, in one step.
-- ARGV: id, committed, possibly charged, grace (ms), ttl
-- Committed credits are spent; possibly charged ones are in doubt until a reading sent
-- `grace` after now; the rest of the reservation is free again. Replies (a = reserved):
--   RELEASED                  done now
--   EXPIRED                   the lease had ended: its reservation stays in doubt
--   ABANDONED / CREDITS       already ended that way (asking again changes nothing)
-- An id never granted (an acquire whose answer was lost) is tombstoned, its ticket
-- dropped, so a late copy of that acquire cannot take a lane nobody would use.
local id = ARGV[1]
local committed, possibly = tonumber(ARGV[2]), tonumber(ARGV[3])
local grace, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = clock()
local L = load_ledger()
if not L then
  return 'NOLEDGER'
end
expire_leases(L, now)
local status, a = 'RELEASED', 0
local p = redis.call('HGET', K_PERMITS, id)
if p then
  local _, reserved = parse_permit(p)
  a = reserved
  drop_permit(id)
  L.R = L.R - reserved
  L.C = L.C + committed
  if possibly > 0 then
    add_doubt(L, now + grace, possibly)
  end
  if reserved > committed + possibly then
    credits_changed(L, now)
  end
else
  local reason = redis.call('HGET', K_DONE, id)
  if reason then
    status = string.upper(reason)
  else
    drop_ticket(id)
    tombstone(id, 'abandoned', now)
    status = 'ABANDONED'
  end
end
drop_dead_tickets(now)
hand_off(L, now)
save_ledger(L)
keep(ttl)
return reply(status, a, 0, 0, L, now)
