-- open: join the account's ledger, or start it from this first account reading.
-- ARGV: spendable, current (-1: unknown), lanes, cap (-1: none), ttl, raise (1: may raise)
-- Reply a: 1 if this call created the ledger.
-- A later joiner's reading was not taken after a mark, so it cannot re-base the credits
-- (the next account check does); it only sets the lanes and may lower the shared cap,
-- or raise it when asked to on purpose (raise = 1).
local spendable, current, lanes = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cap, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local may_raise = ARGV[6] == '1'
local now = clock()
local L = load_ledger()
local created = 0
if not L then
  created = 1
  L = {}
  for _, name in ipairs(FIELDS) do
    L[name] = 0
  end
  L.spendable, L.cur0, L.cap = spendable, current, cap
else
  if cap >= 0 and (L.cap < 0 or cap < L.cap or may_raise) then
    L.cap = cap
  end
end
L.lanes = lanes
housekeeping(L, now)
save_ledger(L)
keep(ttl, true)
return reply('OPENED', created, 0, 0, L, now)
