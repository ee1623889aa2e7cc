package agentdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
)

// An offer is the agent side's record of one call: whom it rings, who took it, and which
// Switchboard instance holds its media stream. Reservations (one key per ringing agent, with
// a TTL of the ring timeout) make sure an agent rings for one call at a time, and that an
// agent nobody hears from stops being reserved by itself.

// OfferState is where a call stands with the agents. The zero value is unknown.
type OfferState int8

const (
	OfferUnknown  OfferState = iota
	OfferQueued              // waiting for an agent
	OfferRinging             // reserved for one agent, ringing in its softphone
	OfferAnswered            // an agent has the call (for outbound calls, from the start)
	OfferEnded               // the call is over for the agents
)

var offerStateNames = [...]string{
	OfferUnknown:  "unknown",
	OfferQueued:   "queued",
	OfferRinging:  "ringing",
	OfferAnswered: "answered",
	OfferEnded:    "ended",
}

func (s OfferState) String() string {
	if s < 0 || int(s) >= len(offerStateNames) {
		return offerStateNames[OfferUnknown]
	}
	return offerStateNames[s]
}

// ParseOfferState reads an offer state by name; anything else is OfferUnknown.
func ParseOfferState(name string) OfferState {
	for s, n := range offerStateNames {
		if n == name {
			return OfferState(s)
		}
	}
	return OfferUnknown
}

// Offer is one call as the agent side routes it.
type Offer struct {
	Call      string
	Direction call.Direction
	From, To  string
	Carrier   string
	State     OfferState
	// Agent is the agent the call rings for (OfferRinging) or that has it (OfferAnswered);
	// AgentInstance and AgentURL say where that agent's session was when it was chosen.
	Agent         string
	AgentInstance string
	AgentURL      string
	// Holder is the instance the call's media stream is pointed at, reached at HolderURL.
	Holder    string
	HolderURL string
	CreatedAt time.Time
	// Consult is the agent the call's agent is consulting (a warm transfer), on the instance
	// ConsultInstance; empty when none.
	Consult         string
	ConsultInstance string
	// A blind transfer to a phone number (transfer_number.go): on the caller's offer, the
	// number and the call id of the outbound leg placed to it, and the agent who transferred
	// it; on that leg's own offer, Bridge is the caller's call it is bridged to.
	Number, NumberLeg, TransferredBy string
	Bridge                           string
	// NumberAt is when the transfer to Number began (the leg's no-answer timeout runs from
	// it); NumberAnswered says the far end answered and the legs were bridged. A survivor
	// that claims the call rebuilds the bridge from these (instances.go).
	NumberAt       time.Time
	NumberAnswered bool
}

// Errors of the offer operations.
var (
	ErrOfferGone    = errors.New("agentdb: the call is no longer offered to this agent")
	ErrAgentOffline = errors.New("agentdb: agent is offline")
	ErrAgentBusy    = errors.New("agentdb: agent is on a call")
	ErrAgentRinging = errors.New("agentdb: a call is ringing for the agent")
)

// offersLua reserves the available agent idle the longest for a queued call, skipping agents
// that already had it (declined, or let it ring out) and agents reserved for another call.
// Stale index entries (the agent went offline, busy or away) are removed on the way.
const offersLua = presenceLua + `
local function reserve(prefix, idle, offer, tried, callid, now, ttl)
  local from, stale, found = 0, {}, nil
  while not found do
    local ids = redis.call('ZRANGEBYSCORE', idle, '-inf', now, 'LIMIT', from, 100)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      local p = redis.call('HMGET', prefix .. 'presence:' .. id, 'state', 'until', 'instance', 'url')
      local ok = p[1] == 'available' or (p[1] == 'wrap-up' and tonumber(p[2] or '') ~= nil and tonumber(p[2]) <= tonumber(now))
      if not ok then
        table.insert(stale, id)
      elseif redis.call('SISMEMBER', tried, id) == 0 and redis.call('SET', prefix .. 'res:' .. id, callid, 'NX', 'PX', ttl) then
        redis.call('HSET', offer, 'state', 'ringing', 'agent', id, 'agent_instance', p[3], 'agent_url', p[4])
        redis.call('SADD', tried, id)
        redis.call('PEXPIRE', tried, redis.call('PTTL', offer))
        found = {id, p[3], p[4]}
        break
      end
    end
    from = from + 100
  end
  for _, id in ipairs(stale) do redis.call('ZREM', idle, id) end
  return found
end
`

var (
	// route creates a call's offer if it is new (and indexes it as waiting, queue.go), and reserves an agent if it is queued. A
	// call's media goes to the instance of the first agent it rings, or to the instance
	// routing it when nobody is available (ARGV 10, 11).
	routeScript = redis.NewScript(offersLua + `
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], 'call', ARGV[2], 'direction', ARGV[6], 'from', ARGV[7], 'to', ARGV[8],
    'carrier', ARGV[9], 'state', 'queued', 'agent', '', 'holder', '', 'holder_url', '', 'created', ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
  redis.call('ZADD', ARGV[1] .. 'waiting', ARGV[3], ARGV[2])
end
local got = nil
if redis.call('HGET', KEYS[2], 'state') == 'queued' then
  got = reserve(ARGV[1], KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], ARGV[4])
end
if redis.call('HGET', KEYS[2], 'holder') == '' then
  local holder, url = ARGV[10], ARGV[11]
  if got then holder, url = got[2], got[3] end
  redis.call('HSET', KEYS[2], 'holder', holder, 'holder_url', url)
  redis.call('SADD', ARGV[1] .. 'held:' .. holder, ARGV[2])
end
return redis.call('HGETALL', KEYS[2])`)

	reserveScript = redis.NewScript(offersLua + `
if redis.call('HGET', KEYS[2], 'state') == 'queued' then
  reserve(ARGV[1], KEYS[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3], ARGV[4])
end
return redis.call('HGETALL', KEYS[2])`)

	// answer gives the call to the agent it rings for, if the reservation still stands, and
	// makes the agent busy in the same step; the caller is no longer waiting (ARGV[5]).
	answerScript = redis.NewScript(`
local o = redis.call('HMGET', KEYS[1], 'state', 'agent')
if o[1] ~= 'ringing' or o[2] ~= ARGV[2] or redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'gone' end
if redis.call('HGET', KEYS[3], 'session') ~= ARGV[3] then return 'replaced' end
redis.call('HSET', KEYS[1], 'state', 'answered')
redis.call('ZREM', ARGV[5], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[3], 'state', 'busy', 'since', ARGV[4], 'until', '0', 'call', ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[2])
return 'ok'`)

	// withdraw puts a call that rang for an agent back in the queue (ring timeout, decline).
	withdrawScript = redis.NewScript(`
local o = redis.call('HMGET', KEYS[1], 'state', 'agent')
if o[1] == 'ringing' and o[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'state', 'queued', 'agent', '')
  if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
  return 'queued'
end
return o[1] or ''`)

	// claim makes an agent busy with an outbound call it places: the call's offer is
	// answered by that agent from the start, and its media goes to the agent's instance.
	claimScript = redis.NewScript(`
local p = redis.call('HMGET', KEYS[1], 'state', 'session', 'instance', 'url')
if not p[1] then return {'offline'} end
if ARGV[2] ~= '' and p[2] ~= ARGV[2] then return {'replaced'} end
if p[1] == 'busy' then return {'busy'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {'ringing'} end
redis.call('HSET', KEYS[1], 'state', 'busy', 'since', ARGV[4], 'until', '0', 'call', ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[4], 'call', ARGV[3], 'direction', ARGV[5], 'from', '', 'to', ARGV[6], 'carrier', '',
  'state', 'answered', 'agent', ARGV[1], 'agent_instance', p[3], 'agent_url', p[4],
  'holder', p[3], 'holder_url', p[4], 'created', ARGV[4])
redis.call('PEXPIRE', KEYS[4], ARGV[7])
redis.call('SADD', ARGV[8] .. 'held:' .. p[3], ARGV[3])
return {'ok', p[1]}`)

	// end marks a call over for the agents, frees the agent it was ringing for, and takes it
	// out of its holder's index of anchored calls (instances.go).
	endScript = redis.NewScript(`
local prev = redis.call('HGETALL', KEYS[1])
if #prev == 0 then return prev end
local o = redis.call('HMGET', KEYS[1], 'state', 'agent', 'holder')
if o[1] == 'ringing' then
  local res = ARGV[2] .. 'res:' .. o[2]
  if redis.call('GET', res) == ARGV[1] then redis.call('DEL', res) end
end
if o[3] and o[3] ~= '' then redis.call('SREM', ARGV[2] .. 'held:' .. o[3], ARGV[1]) end
redis.call('HSET', KEYS[1], 'state', 'ended')
redis.call('ZREM', ARGV[2] .. 'waiting', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('DEL', KEYS[2])
return prev`)
)

// endedOfferTTL is how long an ended offer stays readable, for late webhooks and streams.
const endedOfferTTL = time.Minute

func (r *Store) offerKeys(callID string) []string {
	return []string{r.keys.idle(), r.keys.offer(callID), r.keys.offerTried(callID)}
}

// Route records an inbound call for the agents (if it is not already known) and, while it is
// queued, reserves the available agent idle the longest for ringTimeout. The offer returned
// says whom it rings, if anyone, and where its media must go: the ringing agent's instance,
// or o.Holder at o.HolderURL (the caller's instance) when nobody is available. The offer
// lives for ttl at most.
func (r *Store) Route(ctx context.Context, o Offer, ringTimeout, ttl time.Duration) (Offer, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := routeScript.Run(ctx, r.rdb, r.offerKeys(o.Call), r.keys.agentsPrefix(), o.Call,
		time.Now().UnixMilli(), ringTimeout.Milliseconds(), ttl.Milliseconds(),
		o.Direction.String(), o.From, o.To, o.Carrier, o.Holder, o.HolderURL).Slice()
	if err != nil {
		return Offer{}, fmt.Errorf("agentdb: route call %s: %w", o.Call, err)
	}
	return decodeOffer(res), nil
}

// Reserve offers a queued call to the next available agent (not one it already rang for) for
// ringTimeout. The offer returned is OfferRinging if an agent was reserved, and otherwise as
// it was.
func (r *Store) Reserve(ctx context.Context, callID string, ringTimeout time.Duration) (Offer, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := reserveScript.Run(ctx, r.rdb, r.offerKeys(callID), r.keys.agentsPrefix(), callID,
		time.Now().UnixMilli(), ringTimeout.Milliseconds()).Slice()
	if err != nil {
		return Offer{}, fmt.Errorf("agentdb: reserve an agent for %s: %w", callID, err)
	}
	if len(res) == 0 {
		return Offer{}, store.ErrNotFound
	}
	return decodeOffer(res), nil
}

// AnswerOffer gives a ringing call to the agent of session, which becomes busy with it. It
// fails with ErrOfferGone when the call no longer rings for that agent (it rang out, was
// withdrawn, or ended), and ErrReplaced when session no longer owns the agent.
func (r *Store) AnswerOffer(ctx context.Context, callID, agent, session string) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := answerScript.Run(ctx, r.rdb,
		[]string{r.keys.offer(callID), r.keys.reservation(agent), r.keys.presence(agent), r.keys.idle()},
		callID, agent, session, time.Now().UnixMilli(), r.keys.waiting()).Text()
	switch {
	case err != nil:
		return fmt.Errorf("agentdb: answer %s as %s: %w", callID, agent, err)
	case res == "gone":
		return ErrOfferGone
	case res == "replaced":
		return ErrReplaced
	}
	r.presenceChanged(ctx, agent)
	return nil
}

// WithdrawOffer puts a call that rings for agent back in the queue and frees the agent. It
// returns the call's offer state afterwards: OfferQueued when the call may be offered again
// (by this withdrawal or an earlier one), otherwise where it went meanwhile.
func (r *Store) WithdrawOffer(ctx context.Context, callID, agent string) (OfferState, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := withdrawScript.Run(ctx, r.rdb, []string{r.keys.offer(callID), r.keys.reservation(agent)}, callID, agent).Text()
	if err != nil {
		return OfferUnknown, fmt.Errorf("agentdb: withdraw %s from %s: %w", callID, agent, err)
	}
	return ParseOfferState(res), nil
}

// ClaimForDial makes agent busy with an outbound call to o.To that it is about to place, and
// records the call's offer as answered by it, its media going to the agent's instance.
// session, if not empty, must own the agent. It fails with ErrAgentOffline, ErrAgentBusy,
// ErrAgentRinging or ErrReplaced. prev is the state the agent was in, to go back to if the
// call cannot be placed.
func (r *Store) ClaimForDial(ctx context.Context, agent, session string, o Offer, ttl time.Duration) (Offer, Availability, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	now := time.Now()
	res, err := claimScript.Run(ctx, r.rdb,
		[]string{r.keys.presence(agent), r.keys.idle(), r.keys.reservation(agent), r.keys.offer(o.Call)},
		agent, session, o.Call, now.UnixMilli(), call.Outbound.String(), o.To, ttl.Milliseconds(), r.keys.agentsPrefix()).StringSlice()
	if err != nil {
		return Offer{}, AvailabilityUnknown, fmt.Errorf("agentdb: claim %s for a call: %w", agent, err)
	}
	switch res[0] {
	case "offline":
		return Offer{}, AvailabilityUnknown, ErrAgentOffline
	case "replaced":
		return Offer{}, AvailabilityUnknown, ErrReplaced
	case "busy":
		return Offer{}, AvailabilityUnknown, ErrAgentBusy
	case "ringing":
		return Offer{}, AvailabilityUnknown, ErrAgentRinging
	}
	r.presenceChanged(ctx, agent)
	prev, _ := ParseAvailability(res[1])
	got, err := r.Offer(ctx, o.Call)
	return got, prev, err
}

// EndOffer marks a call over for the agents, frees the agent it was ringing for, and returns
// the offer as it was (store.ErrNotFound if there was none). It is idempotent.
func (r *Store) EndOffer(ctx context.Context, callID string) (Offer, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := endScript.Run(ctx, r.rdb, []string{r.keys.offer(callID), r.keys.offerTried(callID)},
		callID, r.keys.agentsPrefix(), endedOfferTTL.Milliseconds()).Slice()
	if err != nil {
		return Offer{}, fmt.Errorf("agentdb: end offer %s: %w", callID, err)
	}
	if len(res) == 0 {
		return Offer{}, store.ErrNotFound
	}
	return decodeOffer(res), nil
}

// Offer reads a call's offer; store.ErrNotFound if the agents never saw the call.
func (r *Store) Offer(ctx context.Context, callID string) (Offer, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	m, err := r.rdb.HGetAll(ctx, r.keys.offer(callID)).Result()
	if err != nil {
		return Offer{}, fmt.Errorf("agentdb: read offer %s: %w", callID, err)
	}
	if len(m) == 0 {
		return Offer{}, store.ErrNotFound
	}
	return offerFrom(m), nil
}

func decodeOffer(flat []any) Offer {
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	return offerFrom(m)
}

func offerFrom(m map[string]string) Offer {
	return Offer{
		Call: m["call"], Direction: call.ParseDirection(m["direction"]), From: m["from"], To: m["to"],
		Carrier: m["carrier"], State: ParseOfferState(m["state"]), Agent: m["agent"],
		AgentInstance: m["agent_instance"], AgentURL: m["agent_url"],
		Holder: m["holder"], HolderURL: m["holder_url"], CreatedAt: unixMilli(m["created"]),
		Consult: m["consult"], ConsultInstance: m["consult_instance"],
		Number: m["number"], NumberLeg: m["number_leg"], TransferredBy: m["transferred_by"], Bridge: m["bridge"],
		NumberAt: unixMilli(m["number_at"]), NumberAnswered: m["number_answered"] == "1",
	}
}
