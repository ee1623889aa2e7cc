-- Apply one event to one call, atomically: dedupe, forward-only transition, record update,
-- append to the call's bounded log, publish a wake-up.
--
-- KEYS[1] call hash, KEYS[2] call log stream (same hash tag)
-- ARGV: 1 event id, 2 state name ('' = reports none), 3 rank, 4 terminal ('1'/'0'),
--       5 carrier time (unix ms, '' if unknown), 6 received (unix ms), 7 call id,
--       8 carrier, 9 carrier call id, 10 direction, 11 from, 12 to, 13 agent, 14 detail,
--       15 log length, 16 ttl of a live call (ms), 17 ttl of a finished call (ms), 18 channel,
--       19 attempt summary ('' unless the event records an attempt on a carrier)
--
-- The transition rule lives in Go (call.State.Rank); the script only compares the ranks it is
-- handed, so the two cannot disagree.
--
-- Returns {outcome, state, created, ended}, and when the event ended the call also
--         {..., from, to, direction, carrier, carrier_call_id, agent, created_at, attempts}
--         for its call-detail record.
-- outcome: 1 recorded, 2 advanced, 3 duplicate; ended is 1 when this event finished the call.
--
-- It runs on every callback, so it does as few commands as it can: one HMGET reads the record
-- and whether the event was seen (dedupe is a field of the hash), one HSET writes it, one XADD
-- logs the event; the expiry is set only when the call is created or ends, and the wake-up is
-- published only when the state moves.
local call, log = KEYS[1], KEYS[2]
local seen = 'e:' .. ARGV[1]
local cur = redis.call('HMGET', call, 'created_at', 'rank', 'terminal', 'state',
  'carrier', 'carrier_call_id', 'direction', 'from', 'to', 'agent', seen, 'attempts')
if cur[11] then
  return {3, cur[4] or '', 0, 0}
end

local created = 0
local set = {'updated_at', ARGV[6], seen, '1'}
if not cur[1] then
  created = 1
  cur[1] = ARGV[6]
  table.insert(set, 'id'); table.insert(set, ARGV[7])
  table.insert(set, 'created_at'); table.insert(set, ARGV[6])
end
-- Fill fields the record does not have yet; never overwrite what is known.
local fill = {{5, 'carrier', 8}, {6, 'carrier_call_id', 9}, {7, 'direction', 10},
  {8, 'from', 11}, {9, 'to', 12}, {10, 'agent', 13}}
for _, f in ipairs(fill) do
  if (not cur[f[1]] or cur[f[1]] == '') and ARGV[f[3]] ~= '' then
    cur[f[1]] = ARGV[f[3]]
    table.insert(set, f[2]); table.insert(set, ARGV[f[3]])
  end
end
-- Attempts are kept in the record too, so the call-detail record written when the call ends
-- carries them without reading the log.
if ARGV[19] ~= '' then
  cur[12] = (cur[12] or '') .. ARGV[19] .. '\n'
  table.insert(set, 'attempts'); table.insert(set, cur[12])
end

local changed = 0
if ARGV[2] ~= '' and cur[3] ~= '1' and tonumber(ARGV[3]) > tonumber(cur[2] or '0') then
  changed = 1
  cur[4] = ARGV[2]
  table.insert(set, 'state'); table.insert(set, ARGV[2])
  table.insert(set, 'rank'); table.insert(set, ARGV[3])
  table.insert(set, 'terminal'); table.insert(set, ARGV[4])
end
redis.call('HSET', call, unpack(set))

redis.call('XADD', log, 'MAXLEN', '~', ARGV[15], '*',
  'id', ARGV[1], 's', ARGV[2], 'c', ARGV[8], 'at', ARGV[5], 'r', ARGV[6], 'ch', changed, 'd', ARGV[14])

local ended = 0
if changed == 1 and ARGV[4] == '1' then ended = 1 end
-- A live call expires MaxCallAge after it was created, a finished one Retention after it ended.
if created == 1 or ended == 1 then
  local ttl = ARGV[16]
  if ended == 1 then ttl = ARGV[17] end
  redis.call('PEXPIRE', call, ttl)
  redis.call('PEXPIRE', log, ttl)
end

if changed == 1 or created == 1 then
  redis.call('PUBLISH', ARGV[18], ARGV[7] .. ' ' .. (cur[4] or ''))
end
if ended == 0 then
  return {changed + 1, cur[4] or '', created, 0}
end
return {changed + 1, cur[4] or '', created, ended,
  cur[8] or '', cur[9] or '', cur[7] or '', cur[5] or '', cur[6] or '', cur[10] or '', cur[1], cur[12] or ''}
