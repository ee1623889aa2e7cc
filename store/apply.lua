-- Apply a batch of events, each to its call, in order: dedupe, forward-only transition,
-- record update, append to the call's bounded log, publish a wake-up, and (on a single node)
-- keep the active-call index and the call-detail records. One script call takes every event
-- of a pipeline batch, so Redis pays its per-call cost (reading the command, finding the
-- script, setting up and tearing down the run, replicating it) once per batch, not once per
-- event. Each event is applied exactly as if it were alone, in the order given, and its
-- errors are its own (pcall): one bad event does not fail the others.
--
-- KEYS: for each event i (from 0), KEYS[2i+1] its call hash and KEYS[2i+2] its log stream (same
-- hash tag); on a single node the last two are the active-call index and the call-detail
-- stream. Redis Cluster lets a script touch one hash slot only, so there the script takes one
-- event at a time, without those two, and the caller writes them.
-- ARGV: STRIDE values per event; for the event at offset o (0, STRIDE, 2 STRIDE, ...):
--       o+1 event id, o+2 state name ('' = reports none), o+3 rank, o+4 carrier time (unix ms, ''
--       if unknown), o+5 received (unix ms), o+6 call id, o+7 carrier, o+8 carrier call id,
--       o+9 direction, o+10 from, o+11 to, o+12 agent, o+13 detail, o+14 attempt summary ('' unless the
--       event records an attempt on a carrier), o+15 source (who reported the event: callback,
--       api, reconciled, switchboard; '' if unknown), o+16 the state to report instead of o+2 if
--       the call was never answered ('' = none; its rank is TERMINAL_RANK: every such state is
--       an ending), o+17 the attempt the carrier's request names ('' if none)
-- The values that never change between calls (LOG_LEN, CDR_LEN, LIVE_TTL, DONE_TTL,
-- TERMINAL_RANK, ANSWERED_RANK, CHANNEL, the wake-up channel) are constants that Go puts in
-- front of this source.
--
-- The transition rule lives in Go (call.State.Rank); the script only compares the ranks it is
-- handed, so the two cannot disagree. A state is terminal when its rank is TERMINAL_RANK.
--
-- Ownership: field o:<carrier> holds the attempt that carrier was given (0: the inbound call
-- came in on it), negative once we abandoned that attempt. An event from a carrier with no
-- such field (and not the record's carrier, for calls stored before claims) is refused
-- before anything is written; one from an abandoned attempt, or naming another attempt than
-- its carrier's, is an orphan's: logged with a detail that says so, and nothing else moves.
-- The same rule is call.Apply's (call/owner.go).
--
-- Returns one reply per event, in order: {outcome, state, created, ended, orphan}, or an
-- error reply for an event that failed; outcome: 1 recorded, 2 advanced, 3 duplicate,
-- 4 refused (a foreign carrier), 5 orphaned; orphan is 1 when a duplicate is an orphan's
-- (its hang-up may still be owed); ended is 1 when this event finished the call, 2 when it
-- corrected the ending (a late answer, see call.Correctable). On Cluster a finishing event
-- also returns {..., from, to, direction, carrier, carrier_call_id, agent, created_at,
-- attempts} after those, and a correcting one {..., ended_at, corrected ending} after those,
-- for the caller's call-detail record.
--
-- It runs on every callback, so it does as little as it can: one HMGET reads the record and
-- whether the event was seen (dedupe is a field of the hash), one HSET writes it, one XADD
-- logs the event; expiry, index and call-detail record are touched only when the call is
-- created or ends, and a wake-up is published only when the state moves (one message for the
-- batch, see changes).
-- changes collects the batch's wake-ups ("<call id> <state>", one a line): one message for
-- the whole batch, so every instance reads and hands on one message per batch, not one per
-- event.
local changes = {}

-- The record's fields an event may fill, as cur[4] to cur[9] read them.
local names = {'carrier', 'carrier_call_id', 'direction', 'from', 'to', 'agent'}

local function apply(call, log, o, active, cdr)
  local id, state, now = ARGV[o + 1], ARGV[o + 2], ARGV[o + 5]
  local seen = 'e:' .. id
  local carrier, attempt = ARGV[o + 7], ARGV[o + 17]
  local cur = redis.call('HMGET', call, 'created_at', 'rank', 'state', 'carrier', 'carrier_call_id',
    'direction', 'from', 'to', 'agent', 'attempts', seen, 'o:' .. carrier, 'agents')
  local orphan
  if carrier ~= '' and cur[1] then
    local claim = tonumber(cur[12])
    if not claim then
      if cur[4] ~= carrier then return {4, cur[3] or '', 0, 0, 0} end
    elseif claim < 0 or (attempt ~= '' and claim > 0 and attempt ~= cur[12]) then
      if attempt == '' then attempt = tostring(-claim) end
      orphan = 'orphan of attempt ' .. attempt
      if ARGV[o + 13] ~= '' then orphan = orphan .. '; ' .. ARGV[o + 13] end
    end
  end
  if cur[11] then
    return {3, cur[3] or '', 0, 0, orphan and 1 or 0}
  end
  if orphan then
    redis.call('HSET', call, 'updated_at', now, seen, '1')
    redis.call('XADD', log, 'MAXLEN', '~', LOG_LEN, '*',
      'id', id, 's', state, 'c', carrier, 'at', ARGV[o + 4], 'r', now, 'ch', 0, 'd', orphan, 'src', ARGV[o + 15])
    return {5, cur[3] or '', 0, 0, 0}
  end

  local set = {'updated_at', now, seen, '1'}
  local n = 4
  local created = 0
  if not cur[1] then
    created = 1
    cur[1] = now
    set[5], set[6], set[7], set[8] = 'id', ARGV[o + 6], 'created_at', now
    n = 8
    if carrier ~= '' then
      set[9], set[10] = 'o:' .. carrier, attempt ~= '' and attempt or '0'
      n = 10
    end
  end
  -- Fill fields the record does not have yet; never overwrite what is known. Field i of cur
  -- takes the event's argument o + i + 3 (its carrier, at o + 7, to its agent, at o + 12).
  for i = 4, 9 do
    local v = ARGV[o + i + 3]
    if v ~= '' and (not cur[i] or cur[i] == '') then
      cur[i] = v
      set[n + 1], set[n + 2] = names[i - 3], v
      n = n + 2
    end
  end
  -- Every agent that took or joined the call, one a line (call.Call.Agents).
  local agent = ARGV[o + 12]
  if agent ~= '' and not string.find('\n' .. (cur[13] or ''), '\n' .. agent .. '\n', 1, true) then
    cur[13] = (cur[13] or '') .. agent .. '\n'
    set[n + 1], set[n + 2] = 'agents', cur[13]
    n = n + 2
  end
  -- Attempts are kept in the record too, so the call-detail record written when the call ends
  -- carries them without reading the log.
  if ARGV[o + 14] ~= '' then
    cur[10] = (cur[10] or '') .. ARGV[o + 14] .. '\n'
    set[n + 1], set[n + 2] = 'attempts', cur[10]
    n = n + 2
  end

  local changed, ended = 0, 0
  local rank = tonumber(ARGV[o + 3])
  local was = tonumber(cur[2] or '0')
  local detail, answered, fix = ARGV[o + 13], ''
  -- An ending that depends on whether the call was answered (call.Event.ReportedState).
  if ARGV[o + 16] ~= '' and was < ANSWERED_RANK then
    answered = ARGV[o + 2]
    state, rank = ARGV[o + 16], TERMINAL_RANK
  end
  if state ~= '' and was < TERMINAL_RANK and rank > was then
    changed = 1
    cur[3] = state
    set[n + 1], set[n + 2], set[n + 3], set[n + 4] = 'state', state, 'rank', rank
    n = n + 4
    if rank == TERMINAL_RANK then ended = 1 end
    -- Chosen because the call was not answered yet: kept correctable (call.Correctable) as
    -- field ua = answered ending|carrier time of the end|when it was stored.
    if answered ~= '' and answered ~= state then
      set[n + 1], set[n + 2] = 'ua', answered .. '|' .. ARGV[o + 4] .. '|' .. now
      n = n + 2
    end
  elseif rank == ANSWERED_RANK and was == TERMINAL_RANK and state ~= '' then
    -- A late answer: it corrects an ending chosen because the call was not answered yet, if
    -- it happened no later than the end (an unknown time counts as no later). Rare, so its
    -- field is read only here.
    local ua = redis.call('HGET', call, 'ua')
    if ua and ua ~= '' then
      local to, endAt, endedAt = string.match(ua, '^([^|]*)|([^|]*)|([^|]*)$')
      if to and to ~= '' and (ARGV[o + 4] == '' or endAt == '' or tonumber(ARGV[o + 4]) <= tonumber(endAt)) then
        fix = {cur[3], endedAt}
        changed = 1
        cur[3] = to
        set[n + 1], set[n + 2], set[n + 3], set[n + 4] = 'state', to, 'ua', ''
        n = n + 4
        detail = 'answered before it ended: ending corrected to ' .. to
        if ARGV[o + 13] ~= '' then detail = detail .. '; ' .. ARGV[o + 13] end
      end
    end
  end
  redis.call('HSET', call, unpack(set))

  redis.call('XADD', log, 'MAXLEN', '~', LOG_LEN, '*',
    'id', id, 's', state, 'c', ARGV[o + 7], 'at', ARGV[o + 4], 'r', now, 'ch', changed, 'd', detail, 'src', ARGV[o + 15])

  -- A live call expires LIVE_TTL after it was created, a finished one DONE_TTL after it ended.
  if created == 1 or ended == 1 then
    local ttl = LIVE_TTL
    if ended == 1 then ttl = DONE_TTL end
    redis.call('PEXPIRE', call, ttl)
    redis.call('PEXPIRE', log, ttl)
  end
  if changed == 1 or created == 1 then
    changes[#changes + 1] = ARGV[o + 6] .. ' ' .. (cur[3] or '')
  end

  local indexed = active ~= nil
  if indexed then
    if ended == 1 then
      redis.call('ZREM', active, ARGV[o + 6])
      local rec = {'id', ARGV[o + 6], 'state', cur[3],
        'from', cur[7] or '', 'to', cur[8] or '', 'direction', cur[6] or '', 'carrier', cur[4] or '',
        'carrier_call_id', cur[5] or '', 'agent', cur[9] or '', 'created_at', cur[1], 'ended_at', now,
        'attempts', cur[10] or '', 'agents', cur[13] or ''}
      -- A wrap-up saved while the call was live goes into its record (store/wrapup.go). Read
      -- only here, at the end, so the callbacks before it pay nothing for it.
      local w = redis.call('HMGET', call, 'notes', 'disposition', 'wrapped_up_at', 'wrapped_up_by')
      if w[2] then
        for i, f in ipairs({'notes', 'disposition', 'wrapped_up_at', 'wrapped_up_by'}) do
          rec[#rec + 1] = f
          rec[#rec + 1] = w[i] or ''
        end
      end
      redis.call('XADD', cdr, 'MAXLEN', '~', CDR_LEN, '*', unpack(rec))
    elseif created == 1 then
      redis.call('ZADD', active, now, ARGV[o + 6])
    end
    if fix then
      -- A second call-detail record for the call: the corrected ending, naming the one it
      -- replaces, with the end's original time.
      redis.call('XADD', cdr, 'MAXLEN', '~', CDR_LEN, '*', 'id', ARGV[o + 6], 'state', cur[3],
        'from', cur[7] or '', 'to', cur[8] or '', 'direction', cur[6] or '', 'carrier', cur[4] or '',
        'carrier_call_id', cur[5] or '', 'agent', cur[9] or '', 'created_at', cur[1], 'ended_at', fix[2],
        'attempts', cur[10] or '', 'agents', cur[13] or '', 'corrects', fix[1])
    end
  end
  if fix then ended = 2 end
  if ended == 0 or indexed then
    return {changed + 1, cur[3] or '', created, ended, 0}
  end
  local out = {changed + 1, cur[3] or '', created, ended, 0,
    cur[7] or '', cur[8] or '', cur[6] or '', cur[4] or '', cur[5] or '', cur[9] or '', cur[1], cur[10] or ''}
  if fix then out[14], out[15] = fix[2], fix[1] end
  return out
end

local n = #ARGV / STRIDE
local active, cdr
if #KEYS == 2 * n + 2 then
  active, cdr = KEYS[#KEYS - 1], KEYS[#KEYS]
end
local replies = {}
for i = 0, n - 1 do
  local ok, res = pcall(apply, KEYS[2 * i + 1], KEYS[2 * i + 2], i * STRIDE, active, cdr)
  if ok then
    replies[i + 1] = res
  elseif type(res) == 'table' and res.err then
    replies[i + 1] = res -- a Redis error, as redis.call raised it
  else
    replies[i + 1] = {err = tostring(res)}
  end
end
if #changes > 0 then
  redis.call('PUBLISH', CHANNEL, table.concat(changes, '\n'))
end
return replies
