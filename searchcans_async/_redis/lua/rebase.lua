-- rebase (reconcile): re-base the shared budget on an account reading sent after a mark.
-- ARGV: mark seq, C at mark, E at mark, spendable, current (-1: unknown), lanes, ttl
-- A reading whose mark is older than the one in use is ignored (STALE): the newer one
-- already accounts for more. Possibly charged credits are settled as the in-process
-- ledger does: only when the account's consumption since the ledger opened is at least
-- what we committed before the mark, what it shows beyond that bounds what the
-- reflected doubts can have cost; otherwise every doubt stays charged.
local mseq, c_mark, e_mark = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local spendable, current, lanes = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local ttl = tonumber(ARGV[7])
local now = clock()
local L = load_ledger()
if not L then
  return 'NOLEDGER'
end
local status = 'STALE'
if mseq >= L.mref then
  status = 'REBASED'
  L.mref, L.cref, L.eref = mseq, c_mark, e_mark
  L.spendable, L.lanes = spendable, lanes
  -- The counters (current + permanentCurrent) are trusted only when they show at least
  -- what we committed: a counter that lags or stands still frees nothing (_ledger.py).
  local consumed = current - L.cur0
  if L.cur0 < 0 or current < 0 or c_mark <= 0 or consumed < c_mark then
    L.S = 0
  else
    L.S = e_mark - math.max(0, math.min(e_mark, consumed - c_mark))
  end
end
housekeeping(L, now)
if status == 'REBASED' then
  credits_changed(L, now)
end
save_ledger(L)
keep(ttl)
return reply(status, 0, 0, 0, L, now)
