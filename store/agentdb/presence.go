package agentdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Availability is an agent's presence state. The zero value is unknown; an agent with no
// presence record (its browser and instance stopped refreshing it) is Offline.
type Availability int8

const (
	AvailabilityUnknown Availability = iota
	Offline                          // no live session
	Available                        // may be offered calls
	Busy                             // on a call, or placing one
	Away                             // logged in, takes no inbound calls
	WrapUp                           // just finished a call; available again at Presence.Until
)

var availabilityNames = [...]string{
	AvailabilityUnknown: "unknown",
	Offline:             "offline",
	Available:           "available",
	Busy:                "busy",
	Away:                "away",
	WrapUp:              "wrap-up",
}

func (a Availability) String() string {
	if a < 0 || int(a) >= len(availabilityNames) {
		return availabilityNames[AvailabilityUnknown]
	}
	return availabilityNames[a]
}

// ParseAvailability reads a state by its name ("available", "wrap-up", ...).
func ParseAvailability(name string) (Availability, error) {
	for a, n := range availabilityNames {
		if n == name && a != int(AvailabilityUnknown) {
			return Availability(a), nil
		}
	}
	return AvailabilityUnknown, fmt.Errorf("agentdb: unknown availability %q", name)
}

// MarshalText makes an Availability read as its name in JSON.
func (a Availability) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText parses a name.
func (a *Availability) UnmarshalText(b []byte) error {
	v, err := ParseAvailability(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// ErrReplaced is returned to a session whose agent has logged in again elsewhere: the newer
// session owns the presence record now.
var ErrReplaced = errors.New("agentdb: agent session replaced by a newer one")

// ErrPresenceGone is returned by Heartbeat when the presence record expired while its session
// was still alive (Redis lost it, or the instance stalled past the TTL); the session restores
// it with Connect.
var ErrPresenceGone = errors.New("agentdb: agent presence expired")

// Presence is where an agent stands, as every instance sees it. It is written by the instance
// that holds the agent's WebSocket and expires unless that instance refreshes it, so an agent
// whose browser or instance dies drops to offline by itself.
type Presence struct {
	Agent string       `json:"agent"`
	State Availability `json:"state"`
	Since time.Time    `json:"since"`
	// Until is when a wrap-up ends.
	Until time.Time `json:"until,omitzero"`
	// Call is the call the agent is on (Busy, or WrapUp after it).
	Call string `json:"call,omitempty"`
	// Next is the state the agent asked for while on a call, taken when wrap-up ends.
	Next Availability `json:"next,omitzero"`
	// Ringing is the call reserved for the agent, ringing in its softphone now.
	Ringing string `json:"ringing,omitempty"`
	// Session, Instance and URL say which WebSocket session on which Switchboard instance
	// holds the agent, and where that instance is reached (carrier media is pointed there).
	Session  string `json:"-"`
	Instance string `json:"instance,omitempty"`
	URL      string `json:"-"`
}

// presenceLua is shared by the presence scripts: the idle index holds every agent that may be
// offered a call, scored by when it became (or becomes, after wrap-up) idle, so the lowest
// score is the agent idle the longest.
const presenceLua = `
local function index(idle, agent, state, since, untl)
  if state == 'available' then redis.call('ZADD', idle, since, agent)
  elseif state == 'wrap-up' then redis.call('ZADD', idle, untl, agent)
  else redis.call('ZREM', idle, agent) end
end
`

var (
	// connect makes session the owner of the agent's presence. A record that is still alive
	// keeps its state and call (the agent reconnected within the TTL); a missing one is
	// created from the snapshot in ARGV. The previous record is returned so the caller can
	// restore the agent's state and tell the session it replaced.
	connectScript = redis.NewScript(presenceLua + `
local prev = redis.call('HGETALL', KEYS[1])
if #prev == 0 then
  redis.call('HSET', KEYS[1], 'agent', ARGV[1], 'state', ARGV[5], 'since', ARGV[6], 'until', ARGV[7],
    'call', ARGV[8], 'next', ARGV[9], 'session', ARGV[2], 'instance', ARGV[3], 'url', ARGV[4])
  index(KEYS[2], ARGV[1], ARGV[5], ARGV[6], ARGV[7])
else
  redis.call('HSET', KEYS[1], 'session', ARGV[2], 'instance', ARGV[3], 'url', ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[10])
return prev`)

	// heartbeat also checks, when given a token id (ARGV[3]), that the agent still exists with
	// that token: a session whose agent was deleted or whose token was rotated learns it here
	// if the notice that should have ended it was lost.
	heartbeatScript = redis.NewScript(`
if ARGV[3] ~= '' then
  local h = redis.call('HGET', KEYS[2], 'hash')
  if not h or string.sub(h, 1, 16) ~= ARGV[3] then return 'revoked' end
end
local s = redis.call('HGET', KEYS[1], 'session')
if not s then return 'gone' end
if s ~= ARGV[1] then return 'replaced' end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 'ok'`)

	// setState changes the state only if it still is what the session believes (ARGV 3, 4):
	// another instance may have changed it meanwhile (a call answered or dialled through the
	// API), and a stale session must not undo that.
	setStateScript = redis.NewScript(presenceLua + `
local cur = redis.call('HMGET', KEYS[1], 'state', 'call', 'session')
if not cur[3] then return {'gone'} end
if cur[3] ~= ARGV[2] then return {'replaced'} end
if cur[1] ~= ARGV[3] or cur[2] ~= ARGV[4] then return {'conflict', cur[1], cur[2]} end
redis.call('HSET', KEYS[1], 'state', ARGV[5], 'since', ARGV[6], 'until', ARGV[7], 'call', ARGV[8], 'next', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[10])
index(KEYS[2], ARGV[1], ARGV[5], ARGV[6], ARGV[7])
return {'ok'}`)

	disconnectScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'session') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1`)
)

func presenceArgs(p Presence) []any {
	var until int64
	if !p.Until.IsZero() {
		until = p.Until.UnixMilli()
	}
	next := ""
	if p.Next != AvailabilityUnknown {
		next = p.Next.String()
	}
	return []any{p.State.String(), p.Since.UnixMilli(), until, p.Call, next}
}

// Connect makes p.Session the session of agent p.Agent, on p.Instance reached at p.URL. If the
// agent's presence is still alive it keeps its state and call, and prev is that record (with
// the session it had: tell it it was replaced); otherwise the record is created from p's
// state fields and prev is zero.
func (r *Store) Connect(ctx context.Context, p Presence, ttl time.Duration) (prev Presence, err error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	args := append([]any{p.Agent, p.Session, p.Instance, p.URL}, presenceArgs(p)...)
	args = append(args, ttl.Milliseconds())
	res, err := connectScript.Run(ctx, r.rdb, []string{r.keys.presence(p.Agent), r.keys.idle()}, args...).Slice()
	if err != nil {
		return Presence{}, fmt.Errorf("agentdb: connect agent %s: %w", p.Agent, err)
	}
	r.presenceChanged(ctx, p.Agent)
	if len(res) == 0 {
		return Presence{}, nil
	}
	m := make(map[string]string, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		k, _ := res[i].(string)
		v, _ := res[i+1].(string)
		m[k] = v
	}
	return decodePresence(p.Agent, m), nil
}

// Heartbeat keeps session's presence alive for ttl. It returns ErrReplaced when another
// session took the agent over, ErrPresenceGone when the record expired, and, if tokenID (the
// Agent.TokenID the session signed in with) is not empty, ErrRevoked when the agent was
// deleted or its token rotated since.
func (r *Store) Heartbeat(ctx context.Context, agent, session, tokenID string, ttl time.Duration) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	res, err := heartbeatScript.Run(ctx, r.rdb, []string{r.keys.presence(agent), r.keys.agent(agent)},
		session, ttl.Milliseconds(), tokenID).Text()
	switch {
	case err != nil:
		return fmt.Errorf("agentdb: heartbeat agent %s: %w", agent, err)
	case res == "revoked":
		return ErrRevoked
	case res == "replaced":
		return ErrReplaced
	case res == "gone":
		return ErrPresenceGone
	}
	return nil
}

// StateConflict is returned by SetState when the agent's state was not what the session
// expected: Current is what it is.
type StateConflict struct {
	State Availability
	Call  string
}

func (c *StateConflict) Error() string {
	return "agentdb: agent state changed meanwhile (now " + c.State.String() + ")"
}

// SetState moves session's agent from the state and call it expects to next's state, since,
// until, call and next fields, refreshing the TTL. Errors: ErrReplaced, ErrPresenceGone, or a
// *StateConflict with the state the agent is really in.
func (r *Store) SetState(ctx context.Context, session string, expect Availability, expectCall string, next Presence, ttl time.Duration) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	args := append([]any{next.Agent, session, expect.String(), expectCall}, presenceArgs(next)...)
	args = append(args, ttl.Milliseconds())
	res, err := setStateScript.Run(ctx, r.rdb, []string{r.keys.presence(next.Agent), r.keys.idle()}, args...).StringSlice()
	if err != nil {
		return fmt.Errorf("agentdb: set agent %s %s: %w", next.Agent, next.State, err)
	}
	switch res[0] {
	case "gone":
		return ErrPresenceGone
	case "replaced":
		return ErrReplaced
	case "conflict":
		state, _ := ParseAvailability(res[1])
		return &StateConflict{State: state, Call: res[2]}
	}
	r.presenceChanged(ctx, next.Agent)
	return nil
}

// Disconnect removes the agent's presence if session still owns it: the agent logged out, or
// its session ended for good. The agent is offline at once instead of at the TTL.
func (r *Store) Disconnect(ctx context.Context, agent, session string) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	if err := disconnectScript.Run(ctx, r.rdb, []string{r.keys.presence(agent), r.keys.idle()}, agent, session).Err(); err != nil {
		return fmt.Errorf("agentdb: disconnect agent %s: %w", agent, err)
	}
	r.presenceChanged(ctx, agent)
	return nil
}

var presenceFields = []string{"state", "since", "until", "call", "next", "session", "instance", "url"}

func decodePresence(agent string, m map[string]string) Presence {
	p := Presence{Agent: agent, State: Offline}
	if s, err := ParseAvailability(m["state"]); err == nil {
		p.State = s
	}
	p.Since = unixMilli(m["since"])
	if u, _ := strconv.ParseInt(m["until"], 10, 64); u > 0 {
		p.Until = time.UnixMilli(u).UTC()
	}
	p.Call = m["call"]
	p.Next, _ = ParseAvailability(m["next"])
	p.Session, p.Instance, p.URL = m["session"], m["instance"], m["url"]
	return p
}

// Presence reads where an agent stands; an agent without a live record is Offline.
func (r *Store) Presence(ctx context.Context, agent string) (Presence, error) {
	all, err := r.Presences(ctx, []string{agent})
	if err != nil {
		return Presence{}, err
	}
	return all[0], nil
}

// Presences reads the presence of each agent in ids, in order.
func (r *Store) Presences(ctx context.Context, ids []string) ([]Presence, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	fields := make([]*redis.SliceCmd, len(ids))
	ringing := make([]*redis.StringCmd, len(ids))
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			fields[i] = p.HMGet(ctx, r.keys.presence(id), presenceFields...)
			ringing[i] = p.Get(ctx, r.keys.reservation(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("agentdb: read presence: %w", err)
	}
	out := make([]Presence, len(ids))
	for i, id := range ids {
		m := map[string]string{}
		for j, f := range presenceFields {
			if s, ok := fields[i].Val()[j].(string); ok {
				m[f] = s
			}
		}
		if m["state"] == "" {
			out[i] = Presence{Agent: id, State: Offline}
			continue
		}
		out[i] = decodePresence(id, m)
		out[i].Ringing = ringing[i].Val()
	}
	return out, nil
}
