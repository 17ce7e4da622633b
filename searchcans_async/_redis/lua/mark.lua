-- mark: taken just before an account check is sent.
-- ARGV: ttl. Reply (a, b, c): the mark's sequence number and C and E at this instant.
-- Doubts whose time has come (their call is surely over) join E now: the reading about
-- to be sent reflects them, so the re-base may stop counting them as outstanding.
local ttl = tonumber(ARGV[1])
local now = clock()
local L = load_ledger()
if not L then
  return 'NOLEDGER'
end
housekeeping(L, now)
local due = redis.call('ZRANGEBYSCORE', K_DOUBTS, '-inf', int(now), 'LIMIT', 0, 10000)
for _, member in ipairs(due) do
  L.E = L.E + tonumber(string.match(member, ':(%d+)$'))
  redis.call('ZREM', K_DOUBTS, member)
end
L.mseq = L.mseq + 1
save_ledger(L)
keep(ttl)
return reply('MARKED', int(L.mseq), int(L.C), int(L.E), L, now)
