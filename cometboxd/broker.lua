-- broker.lua - the queues of broker = redis, kept in Redis by one script
-- (compiled into cometboxd; loaded with SCRIPT LOAD at each connect and run
-- with EVALSHA). Each call is one atomic step: Redis runs no other command
-- while it runs. docs/SCALING.md describes the keys; PROTOCOL.md the rules
-- (ids, mailboxes, gaps) it keeps exactly as one node does.
--
-- ARGV[1] is the operation, ARGV[2] the key prefix P. Keys:
--   P:id          the last id handed out; P:first the first one
--   P:queues      set: the queues holding messages (what max-queues counts)
--   P:tot         hash m, b: messages and bytes stored (max-total-*)
--   P:q:NAME      sorted set, score = id, member = "ID PUBLISHED_US TAIL"
--                 (TAIL: the message's JSON after its id, msg.h)
--   P:s:NAME      hash a (acknowledged up to), l, lr (lost to, why),
--                 p, pr (purged to, why), b (bytes)
--   P:k:NAME      list "UPTO US": when the acknowledgement point moved
--   P:exp         sorted set: queues holding messages, score = when the
--                 oldest is due to expire (the sweep's list)
-- Channels: P:c:NAME gets every change of NAME, P:ctl kicks.
-- Changes are told as text cometboxd parses (common/mirror.c):
--   "N LAST BATCH NQUEUES\n" (a change) or "L LAST FIRST NQUEUES\n" (a
--   load), then per queue
--   "Q NAMELEN NAME ACKED LOST LOSTWHY PURGED PURGEDWHY NMSGS\n" and per
--   message "LEN MEMBER\n". A publish to several queues ends with
--   "E BATCH" on each of their channels.
-- Ids are below 2^53, so Lua's numbers hold them exactly; fmt() writes
-- them (tostring() would round them to 14 digits).

local op, P = ARGV[1], ARGV[2]
local OVERFLOW, EXPIRED, FLUSHED = 1, 2, 3

local function fmt(x) return string.format('%.0f', x) end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- the last id handed out; the first call of a new Redis starts the
-- sequence at its clock in microseconds, as a node without a journal does
local function last_id()
  local v = redis.call('GET', P .. ':id')
  if v then return tonumber(v) end
  local t = now_us()
  redis.call('SET', P .. ':id', fmt(t - 1))
  redis.call('SET', P .. ':first', fmt(t))
  return t - 1
end

-- a member's publish time and the bytes of its JSON ({"id": ID TAIL)
local function parse(member)
  local a = string.find(member, ' ', 1, true)
  local b = string.find(member, ' ', a + 1, true)
  return tonumber(string.sub(member, a + 1, b - 1)), 6 + (a - 1) + (#member - b)
end

local function state(name)
  local h = redis.call('HMGET', P .. ':s:' .. name, 'a', 'l', 'lr', 'p', 'pr', 'b')
  return { a = tonumber(h[1] or 0), l = tonumber(h[2] or 0), lr = tonumber(h[3] or 0),
           p = tonumber(h[4] or 0), pr = tonumber(h[5] or 0), b = tonumber(h[6] or 0) }
end

-- when the oldest message of name is due to go: its publish time plus
-- message-ttl, or sooner its acknowledgement time plus retain-acked
local function due(name, s, ttl, retain)
  local r = redis.call('ZRANGE', P .. ':q:' .. name, 0, 0, 'WITHSCORES')
  if #r == 0 then return nil end
  local at = parse(r[1]) + ttl
  if tonumber(r[2]) <= s.a then
    local k = P .. ':k:' .. name
    for i = 0, redis.call('LLEN', k) - 1 do
      local e = redis.call('LINDEX', k, i)
      local sp = string.find(e, ' ', 1, true)
      if tonumber(string.sub(e, 1, sp - 1)) >= tonumber(r[2]) then
        at = math.min(at, tonumber(string.sub(e, sp + 1)) + retain)
        break
      end
    end
  end
  return at
end

-- A queue holding messages is in P:exp, scored by when its oldest is due
-- (the sweep drops it then, touched or not, so P:tot and P:queues never
-- count what expired); its keys stay. An empty queue's state (its
-- acknowledgement point, what it lost) lives retain-acked longer, as an
-- empty queue on one node does, plus a minute.
local function save_state(name, s)
  redis.call('HSET', P .. ':s:' .. name, 'a', fmt(s.a), 'l', fmt(s.l), 'lr', s.lr,
             'p', fmt(s.p), 'pr', s.pr, 'b', fmt(s.b))
end

local function keep_empty(name, retain)
  local ms = math.floor(retain / 1000) + 60000
  redis.call('ZREM', P .. ':exp', name)
  redis.call('PEXPIRE', P .. ':s:' .. name, ms)
  redis.call('PEXPIRE', P .. ':k:' .. name, ms)
end

-- a queue holding messages, its oldest due at: swept then, its keys kept
local function keep_due(name, at)
  redis.call('ZADD', P .. ':exp', fmt(at), name)
  redis.call('PERSIST', P .. ':s:' .. name)
  redis.call('PERSIST', P .. ':k:' .. name)
end

local function save(name, s, ttl, retain)
  save_state(name, s)
  local at = due(name, s, ttl, retain)
  if at then
    keep_due(name, at)
  else
    keep_empty(name, retain)
  end
end

-- drops the oldest message of name, remembering it for gap reports
local function drop(name, s, why)
  local r = redis.call('ZPOPMIN', P .. ':q:' .. name)
  if #r == 0 then return false end
  local id = tonumber(r[2])
  local _, len = parse(r[1])
  if id > s.a then s.l = id; s.lr = why end
  s.p = id; s.pr = why; s.b = s.b - len
  redis.call('HINCRBY', P .. ':tot', 'm', -1)
  redis.call('HINCRBY', P .. ':tot', 'b', -len)
  if redis.call('ZCARD', P .. ':q:' .. name) == 0 then redis.call('SREM', P .. ':queues', name) end
  return true
end

-- drops what is older than message-ttl, or acknowledged longer ago than
-- retain-acked (the sweep of one node, done when a queue is touched)
local function expire(name, s, now, ttl, retain)
  local k = P .. ':k:' .. name
  while true do
    local r = redis.call('ZRANGE', P .. ':q:' .. name, 0, 0, 'WITHSCORES')
    if #r == 0 then return end
    local id = tonumber(r[2])
    local old = now - parse(r[1]) >= ttl
    if not old and id <= s.a then
      while true do
        local e = redis.call('LINDEX', k, 0)
        if not e then break end
        local sp = string.find(e, ' ', 1, true)
        if tonumber(string.sub(e, 1, sp - 1)) >= id then
          old = now - tonumber(string.sub(e, sp + 1)) >= retain
          break
        end
        redis.call('LPOP', k)
      end
    end
    if not old then return end
    drop(name, s, EXPIRED)
  end
end

local function block(name, s, members)
  local t = { 'Q ', #name, ' ', name, ' ', fmt(s.a), ' ', fmt(s.l), ' ', s.lr, ' ',
              fmt(s.p), ' ', s.pr, ' ', #members, '\n' }
  for _, mb in ipairs(members) do
    t[#t + 1] = #mb; t[#t + 1] = ' '; t[#t + 1] = mb; t[#t + 1] = '\n'
  end
  return table.concat(t)
end

-- batch: 0, or the first id of a publish that touched several queues:
-- its parts are applied together once "E BATCH" follows (common/mirror.h)
local function tell(name, s, members, batch)
  redis.call('PUBLISH', P .. ':c:' .. name,
             'N ' .. fmt(last_id()) .. ' ' .. fmt(batch or 0) .. ' 1\n' .. block(name, s, members))
end

-- moves name's acknowledgement point to upto; an upto above the last id
-- handed out acknowledges nothing (it is from another sequence: the
-- browser gets a restart gap, PROTOCOL.md)
local function ack(name, upto, now, ttl, retain)
  if upto > last_id() then return 0 end
  local s = state(name)
  if upto <= s.a then return 0 end
  local before = s.a
  s.a = upto
  redis.call('RPUSH', P .. ':k:' .. name, fmt(upto) .. ' ' .. fmt(now))
  save_state(name, s)
  local r = redis.call('ZRANGE', P .. ':q:' .. name, 0, 0, 'WITHSCORES')
  if #r == 0 then
    keep_empty(name, retain)
  elseif tonumber(r[2]) > before and tonumber(r[2]) <= upto then
    -- its oldest is acknowledged now: due at the sooner of its message-ttl
    -- and retain-acked from now (as save() would find)
    redis.call('ZADD', P .. ':exp', fmt(math.min(parse(r[1]) + ttl, now + retain)), name)
  end
  tell(name, s, {})
  return 1
end

-- publish QMAX QBYTES TTL RETAIN MAXQ MAXM MAXB N (NAME TAIL)*N -> first id
-- All of the batch or none of it: every check comes before any write.
if op == 'publish' then
  local qmax, qbytes = tonumber(ARGV[3]), tonumber(ARGV[4])
  local ttl, retain = tonumber(ARGV[5]), tonumber(ARGV[6])
  local maxq, maxm, maxb = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
  local n = tonumber(ARGV[10])
  local now = now_us()
  local states, order, fresh, incoming, purged = {}, {}, 0, 0, {}
  for i = 1, n do
    local name = ARGV[9 + 2 * i]
    if not states[name] then
      states[name] = state(name)
      order[#order + 1] = name
      purged[name] = states[name].p
      expire(name, states[name], now, ttl, retain)
    end
    incoming = incoming + #ARGV[10 + 2 * i] + 26
  end
  for _, name in ipairs(order) do
    if redis.call('SISMEMBER', P .. ':queues', name) == 0 then fresh = fresh + 1 end
  end
  local tot = redis.call('HMGET', P .. ':tot', 'm', 'b')
  local totm, totb = tonumber(tot[1] or 0), tonumber(tot[2] or 0)
  -- a refusal keeps what expiry dropped, and creates nothing
  local function keep_expiry()
    for _, name in ipairs(order) do
      if states[name].p ~= purged[name] then save(name, states[name], ttl, retain) end
    end
  end
  if fresh > 0 and redis.call('SCARD', P .. ':queues') + fresh > maxq then
    keep_expiry()
    return redis.error_reply('FULL too many queues (max-queues)')
  end
  if totm + n > maxm or totb + incoming > maxb then
    keep_expiry()
    return redis.error_reply('BUDGET the memory budget for messages is full (max-total-bytes, max-total-messages)')
  end
  local first = last_id() + 1
  redis.call('INCRBY', P .. ':id', n)
  local added, count, empty, bytes = {}, {}, {}, 0
  for i = 1, n do
    local name, tail = ARGV[9 + 2 * i], ARGV[10 + 2 * i]
    local id = first + i - 1
    local member = fmt(id) .. ' ' .. fmt(now) .. ' ' .. tail
    local len = 6 + #fmt(id) + #tail
    local s = states[name]
    if not count[name] then
      count[name] = redis.call('ZCARD', P .. ':q:' .. name)
      empty[name] = count[name] == 0
      added[name] = {}
    end
    -- room first; a queue always keeps the newest message
    while count[name] > 0 and (count[name] + 1 > qmax or s.b + len > qbytes) do
      drop(name, s, OVERFLOW)
      count[name] = count[name] - 1
    end
    redis.call('ZADD', P .. ':q:' .. name, fmt(id), member)
    count[name] = count[name] + 1
    bytes = bytes + len
    s.b = s.b + len
    table.insert(added[name], member)
  end
  redis.call('HINCRBY', P .. ':tot', 'm', n)
  redis.call('HINCRBY', P .. ':tot', 'b', bytes)
  local batch = #order > 1 and first or 0
  for _, name in ipairs(order) do
    local s = states[name]
    if empty[name] then
      -- its oldest is this publish's first: due at now + message-ttl
      redis.call('SADD', P .. ':queues', name)
      save_state(name, s)
      keep_due(name, now + ttl)
    elseif s.p ~= purged[name] then
      -- its oldest changed (a drop may even have emptied it before this
      -- publish filled it again: drop() took it out of P:queues)
      redis.call('SADD', P .. ':queues', name)
      save(name, s, ttl, retain)
    else
      save_state(name, s)
    end
    tell(name, s, added[name], batch)
  end
  if batch ~= 0 then
    for _, name in ipairs(order) do redis.call('PUBLISH', P .. ':c:' .. name, 'E ' .. fmt(batch)) end
  end
  return fmt(first)
end

-- ack TTL RETAIN (NAME UPTO)* -> the number of queues whose point moved.
if op == 'ack' then
  local ttl, retain = tonumber(ARGV[3]), tonumber(ARGV[4])
  local now, moved = now_us(), 0
  for i = 5, #ARGV, 2 do
    moved = moved + ack(ARGV[i], tonumber(ARGV[i + 1]), now, ttl, retain)
  end
  return moved
end

-- load TTL RETAIN SINCE NAME* -> "L LAST FIRST N\n" and every queue,
-- whole. SINCE (or ""): a browser resumes from it, which acknowledges each
-- queue up to it first, as a subscribe on one node does.
if op == 'load' then
  local ttl, retain = tonumber(ARGV[3]), tonumber(ARGV[4])
  local now = now_us()
  if ARGV[5] ~= '' then
    for i = 6, #ARGV do ack(ARGV[i], tonumber(ARGV[5]), now, ttl, retain) end
  end
  local last = last_id()
  local out = { 'L ', fmt(last), ' ', (redis.call('GET', P .. ':first') or '0'), ' ', #ARGV - 5, '\n' }
  for i = 6, #ARGV do
    local name = ARGV[i]
    local s = state(name)
    local before = s.p
    expire(name, s, now, ttl, retain)
    if s.p ~= before then save(name, s, ttl, retain) end
    out[#out + 1] = block(name, s, redis.call('ZRANGE', P .. ':q:' .. name, 0, -1))
  end
  return table.concat(out)
end

-- sweep TTL RETAIN -> the number of queues that lost messages: drops what
-- is due in every queue, touched or not (each node asks once a second, 64
-- queues a call)
if op == 'sweep' then
  local ttl, retain = tonumber(ARGV[3]), tonumber(ARGV[4])
  local now, count = now_us(), 0
  for _, name in ipairs(redis.call('ZRANGEBYSCORE', P .. ':exp', '-inf', fmt(now), 'LIMIT', 0, 64)) do
    local s = state(name)
    local before = s.p
    expire(name, s, now, ttl, retain)
    save(name, s, ttl, retain)
    if s.p ~= before then
      count = count + 1
      tell(name, s, {})
    end
  end
  return count
end

-- flush TTL RETAIN [NAME] -> messages dropped; no NAME: every queue
if op == 'flush' then
  local ttl, retain = tonumber(ARGV[3]), tonumber(ARGV[4])
  local names, count = {}, 0
  if ARGV[5] then
    if redis.call('EXISTS', P .. ':q:' .. ARGV[5], P .. ':s:' .. ARGV[5]) == 0 then
      return redis.error_reply('NOTFOUND no such queue')
    end
    names = { ARGV[5] }
  else
    names = redis.call('SMEMBERS', P .. ':queues')
  end
  for _, name in ipairs(names) do
    local s = state(name)
    while drop(name, s, FLUSHED) do count = count + 1 end
    save(name, s, ttl, retain)
    tell(name, s, {})
  end
  return count
end

return redis.error_reply('ERR unknown operation ' .. tostring(op))
