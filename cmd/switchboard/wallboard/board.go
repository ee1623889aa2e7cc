// Package wallboard is the console's live wallboard: the floor (agents and their states, the
// callers waiting, live calls, carriers' health), built on each instance while someone
// watches it and pushed to every watching console tab over one server-sent-events stream.
// cmd/switchboard wires it: run starts Board.Run, routes.go mounts its two handlers (the
// ticket behind api.RequireStaff, the stream behind its ticket).
//
// One goroutine per instance builds the floor, on a change announced over Redis (a call's
// state, an agent's presence) or on the tick that stands in for a lost announcement, and only
// while at least one tab watches. It sends a floor only when it differs from the last one.
// Each tab has a small queue of its own; a tab that cannot keep up is cut off (its page
// reconnects), so a slow browser never holds up the board or another tab.
package wallboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
)

// floorStore is what the board reads and watches; *agentdb.Store implements it.
type floorStore interface {
	Agent(ctx context.Context, id string) (agentdb.Agent, error)
	Agents(ctx context.Context) ([]agentdb.Agent, error)
	Presences(ctx context.Context, ids []string) ([]agentdb.Presence, error)
	Waiting(ctx context.Context, limit int) (agentdb.Waiting, error)
	LiveCalls(ctx context.Context, limit int) ([]call.Call, error)
	WatchCalls(ctx context.Context, changed func(callID, state string), resubscribed func()) error
	WatchPresence(ctx context.Context, changed func(agent string), resubscribed func()) error
	IssueTicket(ctx context.Context, ticket, who string, ttl time.Duration) error
	RedeemTicket(ctx context.Context, ticket string) (string, error)
}

// Deps are what the board needs. Breakers, Carriers and Rates may be nil.
type Deps struct {
	Store    floorStore
	Breakers breakerReader
	Carriers carrierList
	Rates    CarrierRates
	Log      *slog.Logger
}

// Options tune the board; the zero value takes the defaults.
type Options struct {
	// Tick is the safety net: the floor is rebuilt this often even when no announcement came
	// (default 1 s).
	Tick time.Duration
	// MinGap bounds how often announcements rebuild it (default 100 ms): a burst of call
	// changes costs one build per gap, not one per change.
	MinGap time.Duration
	// KeepAlive is how often an idle stream gets a comment, so proxies keep it (default 15 s).
	KeepAlive time.Duration
	// TicketTTL is how long a stream ticket may wait to be used (default 30 s).
	TicketTTL time.Duration
	// Queue is how many events a tab may fall behind by before it is cut off (default 8, at
	// least 2).
	Queue int
	// MaxWatchers bounds the streams this instance serves at once (default 256).
	MaxWatchers int
	// WriteTimeout bounds one write to a tab (default 5 s).
	WriteTimeout time.Duration
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Tick, time.Second)
	def(&o.MinGap, 100*time.Millisecond)
	def(&o.KeepAlive, 15*time.Second)
	def(&o.TicketTTL, 30*time.Second)
	def(&o.WriteTimeout, 5*time.Second)
	if o.Queue <= 0 {
		o.Queue = 8
	}
	o.Queue = max(o.Queue, 2) // a tab that joins gets two events at once
	if o.MaxWatchers <= 0 {
		o.MaxWatchers = 256
	}
	return o
}

// Board builds the floor and fans it out to the streams. It is safe for concurrent use.
type Board struct {
	st       floorStore
	breakers breakerReader
	carriers carrierList
	rates    CarrierRates
	log      *slog.Logger
	opts     Options

	wake    chan struct{} // a change was announced, or a tab arrived
	closing chan struct{} // the server is stopping: streams end
	once    sync.Once

	mu       sync.Mutex
	watchers map[*watcher]struct{}
	last     []byte // the last floor sent, without its time; nil until one is built
	storage  bool   // whether the last build could read Redis
	built    bool   // whether any build finished since the first watcher came
}

// watcher is one tab's stream. agent and tokenID are empty for the admin.
type watcher struct {
	events         chan []byte
	gone           chan struct{} // closed when the board cuts the tab off
	why            string        // why it was cut off; read after gone
	agent, tokenID string
}

// New returns a board; Run builds and sends its floors.
func New(d Deps, o Options) *Board {
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Board{st: d.Store, breakers: d.Breakers, carriers: d.Carriers, rates: d.Rates, log: log,
		opts: o.withDefaults(), wake: make(chan struct{}, 1), closing: make(chan struct{}),
		watchers: map[*watcher]struct{}{}, storage: true}
}

// Close ends every stream and refuses new ones: the server is stopping, and an HTTP server
// waits for its requests, which a stream never ends by itself. run registers it with the
// server's shutdown.
func (b *Board) Close() { b.once.Do(func() { close(b.closing) }) }

// poke asks for a build soon; it never blocks.
func (b *Board) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Run builds floors until ctx ends or the board is closed; its owner waits for it. It watches
// the announcements of call and presence changes on goroutines of its own, ended before it
// returns.
func (b *Board) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() {
		b.watch(ctx, "calls", func(ctx context.Context) error {
			return b.st.WatchCalls(ctx, func(string, string) { b.poke() }, b.poke)
		})
	})
	wg.Go(func() {
		b.watch(ctx, "presence", func(ctx context.Context) error {
			return b.st.WatchPresence(ctx, func(string) { b.poke() }, b.poke)
		})
	})
	tick := time.NewTicker(b.opts.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.closing:
			return
		case <-tick.C:
		case <-b.wake:
		}
		if b.watching() == 0 {
			continue
		}
		b.refresh(ctx, time.Now())
		// Coalesce a burst of announcements: whatever arrives in the gap is one more build.
		select {
		case <-ctx.Done():
			return
		case <-b.closing:
			return
		case <-time.After(b.opts.MinGap):
		}
	}
}

// watch keeps one subscription up: a subscription that fails (Redis down at start) is made
// again, since the tick alone would make every change up to a second late.
func (b *Board) watch(ctx context.Context, what string, subscribe func(context.Context) error) {
	for ctx.Err() == nil {
		if err := subscribe(ctx); err != nil && ctx.Err() == nil {
			b.log.Debug("wallboard: watch failed; again in a second", "what", what, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (b *Board) watching() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.watchers)
}

// refresh builds the floor and sends what changed: the floor, and whether Redis could be
// read. A tab whose agent lost the right to watch (deleted, token rotated, no longer a
// supervisor) is cut off.
func (b *Board) refresh(ctx context.Context, now time.Time) {
	floor, agents, err := b.build(ctx)
	if ctx.Err() != nil {
		return // stopping: a read cut short says nothing about Redis
	}
	var body []byte
	if err == nil {
		body, err = json.Marshal(floor)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.built = true
	if err != nil {
		b.log.Debug("wallboard: floor not read", "err", err)
		if b.storage {
			b.storage = false
			b.broadcast(storageEvent(false))
		}
		return
	}
	if !b.storage {
		b.storage = true
		b.broadcast(storageEvent(true))
	}
	allowed := make(map[string]agentdb.Agent, len(agents))
	for _, a := range agents {
		allowed[a.ID] = a
	}
	for w := range b.watchers {
		if w.agent == "" {
			continue
		}
		if a, ok := allowed[w.agent]; !ok || a.TokenID != w.tokenID || a.Role != agentdb.RoleSupervisor {
			b.cut(w, "revoked")
		}
	}
	if bytes.Equal(body, b.last) {
		return
	}
	b.last = body
	b.broadcast(floorEvent(body, now))
}

// broadcast queues ev for every tab without waiting: a tab whose queue is full is cut off.
// b.mu is held.
func (b *Board) broadcast(ev []byte) {
	for w := range b.watchers {
		select {
		case w.events <- ev:
		default:
			b.cut(w, "slow")
		}
	}
}

// cut ends a tab's stream; b.mu is held.
func (b *Board) cut(w *watcher, why string) {
	if _, ok := b.watchers[w]; !ok {
		return
	}
	delete(b.watchers, w)
	w.why = why
	close(w.gone)
	if len(b.watchers) == 0 {
		b.last, b.built = nil, false // nobody watches: the next tab waits for a fresh floor
	}
}

var errTooMany = errors.New("wallboard: too many streams on this instance")

// join adds a tab: it gets the last floor at once if there is one, and a build is asked for.
func (b *Board) join(agent, tokenID string) (*watcher, error) {
	w := &watcher{events: make(chan []byte, b.opts.Queue), gone: make(chan struct{}), agent: agent, tokenID: tokenID}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.closing:
		return nil, errClosing
	default:
	}
	if len(b.watchers) >= b.opts.MaxWatchers {
		return nil, errTooMany
	}
	b.watchers[w] = struct{}{}
	if b.built {
		// The floor first: a page takes a floor as proof that storage answers, and the
		// storage event after it says whether that still holds.
		if b.last != nil {
			w.events <- floorEvent(b.last, time.Now())
		}
		w.events <- storageEvent(b.storage)
	}
	b.poke()
	return w, nil
}

var errClosing = errors.New("wallboard: the server is stopping")

// leave removes a tab that went away by itself.
func (b *Board) leave(w *watcher) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cut(w, "")
}

// The events of the stream, as the page reads them: "floor" carries the floor with the
// server's time when it is sent (the page counts durations on the server's clock), "storage"
// whether Redis can be read, "bye" why the stream ends.
func floorEvent(body []byte, now time.Time) []byte {
	var buf bytes.Buffer
	buf.Grow(len(body) + 48)
	buf.WriteString("event: floor\ndata: {\"at\":")
	buf.WriteString(strconv.FormatInt(now.UnixMilli(), 10))
	buf.WriteString(",\"floor\":")
	buf.Write(body)
	buf.WriteString("}\n\n")
	return buf.Bytes()
}

func storageEvent(ok bool) []byte {
	if ok {
		return []byte("event: storage\ndata: {\"ok\":true}\n\n")
	}
	return []byte("event: storage\ndata: {\"ok\":false,\"message\":\"storage unavailable — showing the last known state\"}\n\n")
}

func byeEvent(reason string) []byte {
	return []byte("event: bye\ndata: {\"reason\":" + strconv.Quote(reason) + "}\n\n")
}
