package wallboard

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/store/agentdb"
)

// Floor is what the wallboard shows at one moment. Times are absolute (when a state began,
// when a call started), never durations, so a floor where nothing happened is byte for byte
// the floor before it and is not sent again; the page counts the seconds itself.
type Floor struct {
	Agents   []AgentRow   `json:"agents"`
	Queue    Queue        `json:"queue"`
	Calls    []CallRow    `json:"calls"`
	Carriers []CarrierRow `json:"carriers"`
}

// AgentRow is one agent and where it stands.
type AgentRow struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Role    string     `json:"role"`
	State   string     `json:"state"`
	Since   *time.Time `json:"since,omitempty"`
	Call    string     `json:"call,omitempty"`
	Ringing string     `json:"ringing,omitempty"`
}

// Queue is the callers waiting for an agent, longest first.
type Queue struct {
	Waiting      int64      `json:"waiting"`
	LongestSince *time.Time `json:"longest_since,omitempty"`
	Calls        []Waiting  `json:"calls"`
}

// Waiting is one caller in the queue: queued, or ringing for an agent who has not answered.
type Waiting struct {
	Call    string    `json:"call"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Carrier string    `json:"carrier,omitempty"`
	State   string    `json:"state"`
	Agent   string    `json:"agent,omitempty"`
	Since   time.Time `json:"since"`
}

// CallRow is one live call. Number is the other party's: the caller of an inbound call, the
// number dialled for an outbound one.
type CallRow struct {
	ID        string    `json:"id"`
	Direction string    `json:"direction"`
	Number    string    `json:"number"`
	Agent     string    `json:"agent,omitempty"`
	Carrier   string    `json:"carrier,omitempty"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
}

// CarrierRow is a carrier's health: the breaker every instance shares and this instance's
// own, the failures in the fleet's window, and callbacks per second when something counts
// them (nil shows as "—").
type CarrierRow struct {
	ID            string   `json:"id"`
	Enabled       bool     `json:"enabled"`
	Breaker       string   `json:"breaker"`
	Forced        string   `json:"forced"`
	Shared        bool     `json:"shared"`
	Local         string   `json:"local"`
	Failures      int64    `json:"failures"`
	Requests      int64    `json:"requests"`
	LocalFailures uint32   `json:"local_failures"`
	CallbacksPerS *float64 `json:"callbacks_per_s"`
}

// Limits on what one floor holds: a wallboard is read by people, and a floor is sent whole.
const (
	maxQueueRows = 50
	maxCallRows  = 200
)

// build reads the floor. Any read that fails fails the build: the page keeps the last floor
// and says the storage is unavailable, rather than showing half of one.
func (b *Board) build(ctx context.Context) (Floor, []agentdb.Agent, error) {
	var f Floor
	agents, err := b.st.Agents(ctx)
	if err != nil {
		return Floor{}, nil, err
	}
	ids := make([]string, len(agents))
	for i, a := range agents {
		ids[i] = a.ID
	}
	ps, err := b.st.Presences(ctx, ids)
	if err != nil {
		return Floor{}, nil, err
	}
	f.Agents = make([]AgentRow, len(agents))
	for i, a := range agents {
		p := ps[i]
		f.Agents[i] = AgentRow{ID: a.ID, Name: a.Name, Role: a.Role.String(), State: p.State.String(), Call: p.Call, Ringing: p.Ringing}
		if !p.Since.IsZero() && p.State != agentdb.Offline {
			f.Agents[i].Since = &p.Since
		}
	}

	w, err := b.st.Waiting(ctx, maxQueueRows)
	if err != nil {
		return Floor{}, nil, err
	}
	f.Queue = Queue{Waiting: w.Count, Calls: make([]Waiting, len(w.Calls))}
	for i, o := range w.Calls {
		f.Queue.Calls[i] = Waiting{Call: o.Call, From: o.From, To: o.To, Carrier: o.Carrier, State: o.State.String(),
			Agent: o.Agent, Since: o.CreatedAt}
	}
	if len(w.Calls) > 0 && !w.Calls[0].CreatedAt.IsZero() {
		f.Queue.LongestSince = &w.Calls[0].CreatedAt
	}

	calls, err := b.st.LiveCalls(ctx, maxCallRows)
	if err != nil {
		return Floor{}, nil, err
	}
	f.Calls = make([]CallRow, 0, len(calls))
	for _, c := range calls {
		if c.State.Terminal() {
			continue
		}
		number := c.To
		if c.Direction == call.Inbound {
			number = c.From
		}
		f.Calls = append(f.Calls, CallRow{ID: c.ID, Direction: c.Direction.String(), Number: number, Agent: c.Agent,
			Carrier: c.Carrier, State: c.State.String(), Since: c.CreatedAt})
	}

	f.Carriers, err = b.carrierRows(ctx)
	if err != nil {
		return Floor{}, nil, err
	}
	return f, agents, nil
}

func (b *Board) carrierRows(ctx context.Context) ([]CarrierRow, error) {
	if b.carriers == nil {
		return []CarrierRow{}, nil
	}
	cfgs := b.carriers.All()
	slices.SortFunc(cfgs, func(x, y carrier.Config) int {
		return cmp.Or(cmp.Compare(x.Priority, y.Priority), cmp.Compare(x.ID, y.ID))
	})
	var rates map[string]float64
	if b.rates != nil {
		var err error
		if rates, err = b.rates.CarrierRates(ctx); err != nil {
			b.log.Debug("wallboard: no callback rates", "err", err)
			rates = nil // shown as "—"
		}
	}
	rows := make([]CarrierRow, 0, len(cfgs))
	for _, cfg := range cfgs {
		row := CarrierRow{ID: cfg.ID, Enabled: cfg.Enabled}
		if b.breakers != nil {
			st, err := b.breakers.Status(ctx, cfg.ID)
			if err != nil {
				continue // deleted meanwhile
			}
			row.Breaker, row.Forced, row.Shared = st.State.String(), st.Force.String(), st.Shared
			row.Local, row.LocalFailures = st.Local.State.String(), st.Local.Failures
			row.Failures, row.Requests = st.Window.Failures, st.Window.Requests
		}
		if rates != nil { // read: a carrier absent from them sent nothing lately
			r := rates[cfg.ID]
			row.CallbacksPerS = &r
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// breakerReader is the carriers' breakers; *dispatch.Breakers implements it.
type breakerReader interface {
	Status(ctx context.Context, carrier string) (dispatch.BreakerStatus, error)
}

// carrierList is the configured carriers; *carrier.Registry implements it.
type carrierList interface {
	All() []carrier.Config
}

// CarrierRates is what the wallboard's callbacks-per-second column reads: the recent rate of
// carrier callbacks by carrier id. It is optional; without it the column shows "—".
type CarrierRates interface {
	CarrierRates(ctx context.Context) (map[string]float64, error)
}
