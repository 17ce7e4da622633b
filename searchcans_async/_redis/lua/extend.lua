-- extend: reserve more credits for a held permit (a call cost more than declared).
-- ARGV: id, extra, token (unique per extension: asking twice reserves once), floor, ttl
-- Replies: EXTENDED (a = reserved now), CREDITS (they do not fit), GONE (the lease ended).
local id, extra, token = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local floor, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = clock()
local L = load_ledger()
if not L then
  return 'NOLEDGER'
end
expire_leases(L, now)
local status, a = 'GONE', 0
local p = redis.call('HGET', K_PERMITS, id)
if p then
  local holder, reserved, deadline, tokens = parse_permit(p)
  if string.find(',' .. tokens .. ',', ',' .. token .. ',', 1, true) then
    status, a = 'EXTENDED', reserved
  elseif fits(L, extra, floor) then
    if tokens ~= '' then
      tokens = tokens .. ','
    end
    put_permit(id, holder, reserved + extra, deadline, tokens .. token)
    L.R = L.R + extra
    status, a = 'EXTENDED', reserved + extra
  else
    status = 'CREDITS'
    L.cwait = now + CREDIT_WAIT_MS
  end
end
save_ledger(L)
keep(ttl)
return reply(status, a, 0, 0, L, now)
