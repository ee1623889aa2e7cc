package agents

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/webrtc"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/monitor"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/agents/transfer"
)

// Defaults of HubOptions.
const (
	DefaultRingTimeout  = 15 * time.Second
	DefaultQueueTimeout = 60 * time.Second
	DefaultWrapUp       = 10 * time.Second
	DefaultPresenceTTL  = 15 * time.Second
	DefaultHeartbeat    = 5 * time.Second
	// The instance's own liveness (anchor.go): a heartbeat every DefaultLiveness promising
	// DefaultLivenessTTL, so a dead instance's calls are claimed about a second after it
	// died; DefaultReanchorGrace is how long an agent waits for its call's media to come back;
	// DefaultHandover how long a stopping instance waits for its calls to move away.
	DefaultLiveness      = 250 * time.Millisecond
	DefaultLivenessTTL   = time.Second
	DefaultReanchorGrace = 10 * time.Second
	DefaultHandover      = 5 * time.Second
)

// offerTTL bounds how long the agent side remembers a call: longer than any call lasts.
const offerTTL = 12 * time.Hour

// PlaceError is an error from placing a call whose message may be shown to the agent (a
// carrier's "busy" or "invalid number"); any other error is shown as a generic failure.
type PlaceError struct{ Reason string }

func (e *PlaceError) Error() string { return e.Reason }

// HubOptions configures the agent side of one Switchboard instance. Store, Engine, Carriers,
// Instance, PublicURL and RelaySecret are required.
type HubOptions struct {
	Store    *agentdb.Store
	Engine   *webrtc.Engine
	Carriers held.Carriers
	// Instance names this instance among those sharing Redis (unique per process); PublicURL
	// is where browsers and carriers reach it.
	Instance  string
	PublicURL string
	// RelaySecret keys the tokens instances present to each other's media relay; every
	// instance of a deployment must have the same one.
	RelaySecret []byte
	// AllowedOrigins are browser origins, besides PublicURL's, whose pages may open a
	// softphone socket (SWITCHBOARD_ALLOWED_ORIGINS), each as ParseOrigin reads it.
	AllowedOrigins []string
	// RingTimeout is how long a call rings for one agent before it goes to the next.
	RingTimeout time.Duration
	// QueueTimeout is how long an inbound call waits for an agent, hearing the hold tone,
	// before the caller is told nobody can take the call.
	QueueTimeout time.Duration
	// WrapUp is how long an agent rests after a call before it is offered the next one.
	WrapUp time.Duration
	// PresenceTTL is how long an agent stays online without a heartbeat from its session (and
	// how long a session waits for its browser to reconnect); Heartbeat is how often a live
	// session refreshes it.
	PresenceTTL time.Duration
	Heartbeat   time.Duration
	// Liveness is how often the instance tells the others it is alive, each time for
	// LivenessTTL, and how often it looks for calls of instances that stopped doing so.
	Liveness    time.Duration
	LivenessTTL time.Duration
	// ReanchorGrace is how long an agent on a call whose media path broke waits for the
	// call's media to come back (re-anchored on a survivor) before the call ends as
	// media-lost. Handover bounds how long a stopping instance waits for its calls to move.
	ReanchorGrace time.Duration
	Handover      time.Duration
	// ICEServers, a JSON array of RTCIceServer (STUN, TURN), is handed to each signed-in
	// softphone for its PeerConnection; nil: none. Only signed-in agents see TURN credentials.
	ICEServers json.RawMessage
	// Recording turns call recording on; nil: off.
	Recording *RecordingOptions
	// Dispositions are what an agent may close a call with (SWITCHBOARD_DISPOSITIONS);
	// none: call.DefaultDispositions. WrapUpWindow is how long after a call ended its agent
	// may still save its wrap-up; 0: WrapUp and call.WrapUpGrace.
	Dispositions call.Dispositions
	WrapUpWindow time.Duration
	// Staff checks the token a supervisor's console monitors a call with (package monitor); nil:
	// nobody may monitor.
	Staff StaffAuthenticator
	Log   *slog.Logger
}

// Hub is the agent side of one instance: the agents' signalling sessions, the calls whose
// media this instance holds, inbound routing and outbound dialing. Run it for the life of
// the instance; cmd/switchboard mounts its handlers (routes.go).
type Hub struct {
	opts      HubOptions
	heldOpts  held.Options // the settings of the calls held here
	monitors  *monitor.Server
	transfers *transfer.Desk
	st        *agentdb.Store
	log       *slog.Logger
	origins   signal.Origins

	// mu guards the fields below it and is a leaf: nothing else is locked while it is held
	// (sessions and held calls take it, through enter or forget, under their own locks).
	mu       sync.Mutex
	sessions map[string]*session   // by agent id
	calls    map[string]*held.Call // by call id
	legs     map[string]*held.Leg  // blind transfers' outbound legs bridged here, by call id
	closed   bool
	leaving  bool           // Handover began: no more heartbeats or claims
	stalled  atomic.Bool    // tests: the instance stops heartbeating and claiming, as if stalled
	wg       sync.WaitGroup // timers, relays and background work
	done     chan struct{}  // closed when the hub shuts down
	wake     chan struct{}  // queued calls may find an agent now
}

// orDefault sets a duration option left unset (or negative) to its default.
func orDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// NewHub returns a hub for opts; Run starts it.
func NewHub(opts HubOptions) *Hub {
	orDefault(&opts.RingTimeout, DefaultRingTimeout)
	orDefault(&opts.QueueTimeout, DefaultQueueTimeout)
	orDefault(&opts.WrapUp, DefaultWrapUp)
	orDefault(&opts.PresenceTTL, DefaultPresenceTTL)
	orDefault(&opts.Heartbeat, DefaultHeartbeat)
	orDefault(&opts.Liveness, DefaultLiveness)
	orDefault(&opts.LivenessTTL, DefaultLivenessTTL)
	orDefault(&opts.ReanchorGrace, DefaultReanchorGrace)
	orDefault(&opts.Handover, DefaultHandover)
	orDefault(&opts.WrapUpWindow, opts.WrapUp+call.WrapUpGrace)
	if len(opts.Dispositions) == 0 {
		opts.Dispositions, _ = call.ParseDispositions(call.DefaultDispositions) // a constant that parses
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	h := &Hub{
		opts: opts, st: opts.Store, log: opts.Log, origins: signal.NewOrigins(opts.PublicURL, opts.AllowedOrigins),
		heldOpts: held.Options{Store: opts.Store, Carriers: opts.Carriers, Instance: opts.Instance, PublicURL: opts.PublicURL,
			RingTimeout: opts.RingTimeout, QueueTimeout: opts.QueueTimeout, PresenceTTL: opts.PresenceTTL,
			Recording: opts.Recording, Log: opts.Log},
		sessions: map[string]*session{}, calls: map[string]*held.Call{}, legs: map[string]*held.Leg{},
		done: make(chan struct{}), wake: make(chan struct{}, 1),
	}
	h.monitors = monitor.New(hubHost{h}, monitor.Options{Store: opts.Store, Engine: opts.Engine, Staff: opts.Staff,
		Origins: h.origins, ICEServers: opts.ICEServers, PresenceTTL: opts.PresenceTTL, Log: opts.Log, Done: h.done})
	h.transfers = transfer.New(transfer.Options{Store: opts.Store, RingTimeout: opts.RingTimeout, OfferTTL: offerTTL,
		Log: opts.Log, Send: h.send})
	return h
}

// Run listens for other instances' notices, offers queued calls to agents as they free up and
// keeps the presence of connected agents alive, until ctx ends. It then ends every session
// and call it holds (without hanging calls up: the carrier streams close with the process)
// and waits for all of its goroutines.
func (h *Hub) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { h.dispatch(ctx) })
	wg.Go(func() { h.heartbeats(ctx) })
	wg.Go(func() { h.anchor(ctx) })
	err := h.st.Listen(ctx, h.opts.Instance, h.notice)
	cancel()
	wg.Wait()
	h.shutdown()
	return err
}

func (h *Hub) shutdown() {
	h.mu.Lock()
	h.closed = true
	sessions := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		sessions = append(sessions, s)
	}
	calls := make([]*held.Call, 0, len(h.calls))
	for _, c := range h.calls {
		calls = append(calls, c)
	}
	h.mu.Unlock()
	close(h.done)
	for _, s := range sessions {
		s.shutdown()
	}
	for _, c := range calls {
		c.Shutdown()
	}
	h.wg.Wait()
}

// enter registers a goroutine with the hub; false means the hub has shut down.
func (h *Hub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Add(1)
	return true
}

// after runs f after d on a goroutine the hub waits for; Stop the timer to cancel it.
func (h *Hub) after(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(d, func() {
		if !h.enter() {
			return
		}
		defer h.wg.Done()
		f()
	})
}

// background runs f on a goroutine the hub owns, with a context that ends after timeout or
// when the hub shuts down.
func (h *Hub) background(timeout time.Duration, f func(ctx context.Context)) {
	if !h.enter() {
		return
	}
	go func() {
		defer h.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-h.done:
				cancel()
			case <-stop:
			}
		}()
		f(ctx)
	}()
}

func (h *Hub) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// dispatch offers queued calls held here to agents, oldest first, whenever an agent may have
// freed up (a notice, which Pub/Sub may lose) and once a second whatever happens.
func (h *Hub) dispatch(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-tick.C:
		}
		for _, c := range h.waiting() {
			c.OfferNext(ctx)
		}
	}
}

func (h *Hub) waiting() []*held.Call {
	var out []*held.Call
	for _, c := range h.heldCalls() { // not under h.mu: a held call takes h.mu under its own
		if c.IsWaiting() {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *held.Call) int { return a.Created().Compare(b.Created()) })
	return out
}

func (h *Hub) heartbeats(ctx context.Context) {
	tick := time.NewTicker(h.opts.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		h.mu.Lock()
		live := make([]*session, 0, len(h.sessions))
		for _, s := range h.sessions {
			live = append(live, s)
		}
		h.mu.Unlock()
		for _, s := range live {
			s.heartbeat(ctx)
		}
	}
}

func (h *Hub) session(agent string) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sessions[agent]
}

// hangupCall ends a call on behalf of its agent, at the instance holder that holds its media
// (which may not hold it yet, or any more: then the carrier is asked directly).
func (h *Hub) hangupCall(callID, holder string) {
	if holder != "" && holder != h.opts.Instance {
		h.background(opTimeout, func(ctx context.Context) {
			// A notice to a dead holder is lost, and its call lives on with whoever claims it:
			// then the call is ended from here.
			if alive, err := h.st.InstanceAlive(ctx, holder); err != nil || alive {
				h.send(holder, notice{Type: noticeHangup, Call: callID})
				return
			}
			h.endHere(ctx, callID)
		})
		return
	}
	if c := h.held(callID); c != nil {
		c.End(held.ReasonAgentHangup, held.EndHangup)
		return
	}
	h.background(opTimeout, func(ctx context.Context) { h.endHere(ctx, callID) })
}

// endHere ends a call this instance does not hold: its offer, and the call at its carrier.
func (h *Hub) endHere(ctx context.Context, callID string) {
	if _, err := h.st.EndOffer(ctx, callID); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.log.Warn("agents: offer of a hung-up call not ended", "call", callID, "err", err)
	}
	if err := h.opts.Carriers.Hangup(ctx, callID); err != nil {
		h.log.Warn("agents: hang-up failed", "call", callID, "err", err)
	}
}
