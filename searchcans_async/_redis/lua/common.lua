-- Shared head of every script of the Redis lane backend (searchcans_async/_redis.py).
--
-- One account's state lives in nine keys, all with the account in a hash tag so that a
-- cluster keeps them on one slot, each given an expiry when a script creates it and
-- again by every heartbeat (renew), so that abandoned state cleans itself up:
--   KEYS[1] ledger   hash: the credit ledger's counters (see FIELDS)
--   KEYS[2] permits  hash: permit id -> "holder|reserved|deadline|tokens"
--   KEYS[3] leases   zset: permit id scored by its lease deadline (ms, server TIME)
--   KEYS[4] queue    zset: waiting permit id scored by its ticket number (FIFO)
--   KEYS[5] tickets  hash: waiting permit id -> "holder|cost|floor|lease"
--   KEYS[6] texp     zset: waiting permit id scored by when its waiter is presumed dead
--   KEYS[7] doubts   zset: "seq:credits" scored by when an account reading reflects it
--   KEYS[8] done     hash: permit id -> why it ended without a release (tombstone)
--   KEYS[9] donet    zset: the same ids scored by when they were tombstoned
--
-- Credits, as _ledger.CreditLedger counts them, but cumulative so that marks taken by
-- several processes never double count:
--   R reserved now; C committed ever; P possibly charged ever; E the part of P that a
--   reading sent after some mark reflects; S the part of the reflected doubts that a
--   reading proved unbilled; cref/eref the C/E of the mark of the reading in use.
--   outstanding = R + (C - cref) + (P - eref)      (what `spendable` does not show yet)
--   an item fits if cost <= spendable - floor - outstanding
--            and (no cap or C + (P - S) + R + cost <= cap)
-- Time is the server's TIME in milliseconds, never a client's clock.

local K_LEDGER, K_PERMITS, K_LEASES, K_QUEUE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_TICKETS, K_TEXP, K_DOUBTS, K_DONE, K_DONET = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local PREFIX = string.sub(K_LEDGER, 1, -7)  -- "{sc:NAME}:" ("ledger" is 6 characters)

local FIELDS = {
  'spendable', 'lanes', 'cap', 'cur0', 'R', 'C', 'P', 'E', 'S',
  'cref', 'eref', 'mref', 'mseq', 'dseq', 'tseq', 'cwait',
}
local CREDIT_WAIT_MS = 10000  -- how long a refusal for credits asks releases to announce

local function int(x)
  return string.format('%d', x)
end

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local ORIGINAL = {}  -- the ledger as loaded: only changed fields are written back
local TOUCHED = {}  -- indexes in KEYS of the keys this call wrote

local COUNTS = {}  -- ZCARD of leases (3) and queue (4), read once, then kept by our writes

local function touch(i)
  TOUCHED[i] = true
end

local function count(i)
  if COUNTS[i] == nil then
    COUNTS[i] = redis.call('ZCARD', KEYS[i])
  end
  return COUNTS[i]
end

local function counted(i, delta)
  if COUNTS[i] ~= nil then
    COUNTS[i] = COUNTS[i] + delta
  end
end

local function load_ledger()
  local values = redis.call('HMGET', K_LEDGER, unpack(FIELDS))
  if not values[1] then
    return nil
  end
  local L = {}
  for i, name in ipairs(FIELDS) do
    L[name] = tonumber(values[i]) or 0
    ORIGINAL[name] = L[name]
  end
  return L
end

local function save_ledger(L)
  local args = {}
  for _, name in ipairs(FIELDS) do
    if L[name] ~= ORIGINAL[name] then
      args[#args + 1] = name
      args[#args + 1] = int(L[name])
    end
  end
  if #args > 0 then
    redis.call('HSET', K_LEDGER, unpack(args))  -- an existing key keeps its expiry
  end
end

-- A key this call created (Redis deletes empty ones) gets the account's expiry at once;
-- the heartbeat (renew) refreshes all of them, so a live account never expires.
local function keep(ttl, all)
  for i = 1, 9 do
    if all or TOUCHED[i] then
      redis.call('PEXPIRE', KEYS[i], ttl)
    end
  end
end

local function parse_permit(p)
  local holder, reserved, deadline, tokens = string.match(p, '^([^|]*)|(%d+)|(%d+)|(.*)$')
  return holder, tonumber(reserved), tonumber(deadline), tokens
end

local function put_permit(id, holder, reserved, deadline, tokens)
  redis.call('HSET', K_PERMITS, id,
    holder .. '|' .. int(reserved) .. '|' .. int(deadline) .. '|' .. tokens)
  redis.call('ZADD', K_LEASES, int(deadline), id)
end

local function drop_permit(id)
  redis.call('HDEL', K_PERMITS, id)
  counted(3, -redis.call('ZREM', K_LEASES, id))
end

local function tombstone(id, reason, now)
  redis.call('HSET', K_DONE, id, reason)
  redis.call('ZADD', K_DONET, int(now), id)
  touch(8)
  touch(9)
end

local function add_doubt(L, at, credits)
  L.dseq = L.dseq + 1
  L.P = L.P + credits
  redis.call('ZADD', K_DOUBTS, int(at), int(L.dseq) .. ':' .. int(credits))
  touch(7)
end

local function add_ticket(L, id, holder, cost, floor, lease, expires)
  if count(4) == 0 then  -- queue, tickets and texp always hold the same ids
    touch(4)
    touch(5)
    touch(6)
  end
  L.tseq = L.tseq + 1
  redis.call('ZADD', K_QUEUE, int(L.tseq), id)
  redis.call('HSET', K_TICKETS, id,
    holder .. '|' .. int(cost) .. '|' .. int(floor) .. '|' .. int(lease))
  redis.call('ZADD', K_TEXP, int(expires), id)
  counted(4, 1)
end

local function drop_ticket(id)
  counted(4, -redis.call('ZREM', K_QUEUE, id))
  redis.call('ZREM', K_TEXP, id)
  redis.call('HDEL', K_TICKETS, id)
end

-- A lease that ended takes its lane back. Its reservation is never refunded: nobody
-- knows whether the holder's request was billed, so it is in doubt until a reading
-- sent after the lease ended (the request was over by then) settles it.
local function expire_leases(L, now)
  local ids = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', int(now), 'LIMIT', 0, 256)
  for _, id in ipairs(ids) do
    local p = redis.call('HGET', K_PERMITS, id)
    drop_permit(id)
    if p then
      local _, reserved, deadline = parse_permit(p)
      L.R = L.R - reserved
      if reserved > 0 then
        add_doubt(L, deadline, reserved)
      end
      tombstone(id, 'expired', now)
    end
  end
end

-- A waiter that stopped polling (crashed, paused) leaves the queue.
local function drop_dead_tickets(now)
  local ids = redis.call('ZRANGEBYSCORE', K_TEXP, '-inf', int(now), 'LIMIT', 0, 256)
  for _, id in ipairs(ids) do
    drop_ticket(id)
  end
end

local function fits(L, cost, floor)
  local outstanding = L.R + (L.C - L.cref) + (L.P - L.eref)
  if cost > L.spendable - floor - outstanding then
    return false
  end
  if L.cap >= 0 and L.C + (L.P - L.S) + L.R + cost > L.cap then
    return false
  end
  return true
end

local function grant(L, id, holder, cost, now, lease)
  if count(3) == 0 then  -- permits and leases always hold the same ids
    touch(2)
    touch(3)
  end
  local deadline = now + lease
  put_permit(id, holder, cost, deadline, '')
  counted(3, 1)
  L.R = L.R + cost
  return deadline
end

local function wake(holder, message)
  redis.call('PUBLISH', PREFIX .. 'wake:' .. holder, message)
end

-- Free lanes go to the waiters at the head of the queue, in ticket order; a head whose
-- credits do not fit is refused (it learns so and stops waiting) and the next one is tried.
local function hand_off(L, now)
  local free = L.lanes - count(3)
  local rounds = 0
  while free > 0 and rounds < 1000 do
    rounds = rounds + 1
    local head = redis.call('ZRANGE', K_QUEUE, 0, 0)
    local id = head[1]
    if not id then
      break
    end
    local t = redis.call('HGET', K_TICKETS, id)
    drop_ticket(id)
    if t then
      local holder, cost, floor, lease = string.match(t, '^([^|]*)|(%d+)|(%d+)|(%d+)$')
      cost, floor, lease = tonumber(cost), tonumber(floor), tonumber(lease)
      if fits(L, cost, floor) then
        local deadline = grant(L, id, holder, cost, now, lease)
        wake(holder, 'g|' .. id .. '|' .. int(deadline) .. '|' .. int(cost))
        free = free - 1
      else
        tombstone(id, 'credits', now)
        L.cwait = now + CREDIT_WAIT_MS
        wake(holder, 'r|' .. id)
      end
    end
  end
end

local function credits_changed(L, now)
  if L.cwait > now then
    redis.call('PUBLISH', PREFIX .. 'credits', 'c')
  end
end

local function housekeeping(L, now)
  expire_leases(L, now)
  drop_dead_tickets(now)
  hand_off(L, now)
end

-- Every reply is one string, "status|a|b|c|" then the ledger's state (cheap to parse):
-- spendable|lanes|cap|R|C|P|S|cref|eref|now|live leases|queued waiters. Every number here
-- is a whole number below 1e14, which table.concat writes exactly (Lua's "%.14g").
local function reply(status, a, b, c, L, now)
  return table.concat({
    status, a, b, c,
    L.spendable, L.lanes, L.cap, L.R, L.C, L.P, L.S, L.cref, L.eref, now,
    count(3), count(4),
  }, '|')
end
