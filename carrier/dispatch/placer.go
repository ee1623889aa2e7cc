package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
)

// Placer places outbound calls: it creates the call record, tries the carriers the Router
// gives in order until one accepts, and watches that the accepting carrier calls back.
//
// A carrier fault moves the call to the next carrier at once, for the same call record; a
// final answer (invalid number, the caller gave up) stops, because another carrier would ring
// the same callee or refuse the same number. Every attempt goes into the call's history (an
// event with no state, id <call>:attempt:<n>) and from there into its call-detail record.
//
// A call the carrier accepted counts for its breaker only once its fate is known: the first
// state change any instance stores for it (every instance's store publishes it) is a
// success; none within the carrier's callback deadline is a failure. That is the failure of
// the incident this exists for: a carrier that takes calls and cannot call back. The check
// costs the webhook path nothing: it listens to the notification the store already publishes.
//
// A call accepted by a carrier that later ends with a carrier fault before ringing is not
// placed again elsewhere: it may already have reached the callee's network, and the caller has
// been waiting; the fault counts against the carrier through the breaker instead.
type Placer struct {
	d       PlacerDeps
	live    *liveness
	orphans *orphans
}

// placerStore is what placing calls needs from the store; *carrierdb.Store implements it.
type placerStore interface {
	Apply(ctx context.Context, e call.Event) (store.Applied, error)
	ClaimAttempt(ctx context.Context, callID, carrier string, n int) error
	AbandonAttempt(ctx context.Context, callID, carrier string, n int) (string, error)
	LinkAttempt(ctx context.Context, callID, carrier string, n int, carrierCallID string) error
	Call(ctx context.Context, id string) (call.Call, error)
	CallByCarrierID(ctx context.Context, carrierCallID, carrier string) (call.Call, error)
	WatchCalls(ctx context.Context, changed func(callID, state string), resubscribed func()) error
	AddCarrierEvent(ctx context.Context, e carrierdb.Event) error
	EnqueueJob(ctx context.Context, j store.Job) (bool, error) // an orphan's hang-up
}

// PlacerDeps are what a Placer needs. Store, Registry, Breakers, Router and PublicURL are
// required.
type PlacerDeps struct {
	Store    placerStore
	Registry *carrier.Registry
	Breakers *Breakers
	Router   *Router
	// PublicURL is where carriers reach us, without a trailing slash; callback URLs are built
	// from it.
	PublicURL string
	// TelnyxStreamURL is the media stream URL of a call on a Telnyx carrier, on the instance
	// whose public URL is mediaBase ("" for this one); the webhooks server signs it. nil: no
	// media stream is requested.
	TelnyxStreamURL func(mediaBase, carrierID, callID string) string
	// TwilioStatusOverrides are Twilio connection overrides appended to the StatusCallback URL
	// as a fragment. Default "rc=3&rp=ct,5xx": Twilio retries a status callback up to three
	// times when it cannot connect or we answer 5xx (we answer 503 when Redis cannot take the
	// event), instead of once. The fragment is not signed, so verification is unaffected.
	// "-" sends none.
	TwilioStatusOverrides string
	// FallbackBase returns the public URL of another live instance, where a Twilio call's
	// TwiML is fetched if this instance is gone when the call is answered (its FallbackUrl);
	// "" or nil: none.
	FallbackBase func(ctx context.Context) string
	Metrics      *Metrics
	Log          *slog.Logger
}

// NewPlacer returns a Placer; Run must be running for callback liveness to be observed.
func NewPlacer(d PlacerDeps) *Placer {
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	switch d.TwilioStatusOverrides {
	case "":
		d.TwilioStatusOverrides = "rc=3&rp=ct,5xx"
	case "-":
		d.TwilioStatusOverrides = ""
	}
	d.PublicURL = strings.TrimRight(d.PublicURL, "/")
	return &Placer{d: d, live: newLiveness(d.Store, d.Metrics, d.Log), orphans: newOrphans(d.Store, d.Log)}
}

// PlaceCall is a request to call To.
type PlaceCall struct {
	To    string // E.164
	From  string // E.164; empty: each carrier's configured caller id
	Agent string // the agent the call is for, if any
	// CallID is the id the call gets; empty: a new one. The agents' side chooses it, because
	// its offer to the agent (which says where the call's media goes) exists before the call.
	CallID string
	// MediaURL is the public URL of the instance that should receive the call's media (the one
	// holding the agent); empty: this one.
	MediaURL string
}

// Placement errors. A call that gets one still has a record, in a terminal state, with every
// attempt in its history.
var (
	// ErrNoCarrier: no carrier took the call (each failed, or none was available).
	ErrNoCarrier = errors.New("no carrier took the call")
	// ErrRefused: a carrier gave a final answer (the number is invalid or not allowed); no
	// other carrier was tried.
	ErrRefused = errors.New("the call was refused")
)

// Place places req and returns the call as stored. On error the call (if one was created)
// is returned too, in state failed or canceled. Placement goes on even if ctx is canceled
// once the record exists: a carrier may already be dialling, and the record must say so.
func (p *Placer) Place(ctx context.Context, req PlaceCall) (call.Call, error) {
	if !carrier.IsE164(req.To) {
		return call.Call{}, &carrier.ValidationError{Field: "to", Message: fmt.Sprintf("%q is not an E.164 number such as +15551234567", req.To)}
	}
	if req.From != "" && !carrier.IsE164(req.From) {
		return call.Call{}, &carrier.ValidationError{Field: "from", Message: fmt.Sprintf("%q is not an E.164 number", req.From)}
	}
	start := time.Now()
	ctx = context.WithoutCancel(ctx)
	id := req.CallID
	if id == "" {
		id = store.NewCallID()
	}
	if _, err := p.d.Store.Apply(ctx, call.Event{ID: id + ":placed", CallID: id, State: call.Queued,
		Direction: call.Outbound, From: req.From, To: req.To, Agent: req.Agent, At: start,
		Source: call.SourceSwitchboard}); err != nil {
		return call.Call{}, err
	}

	route := p.d.Router.Route()
	fallback := ""
	if p.d.FallbackBase != nil {
		fallback = strings.TrimRight(p.d.FallbackBase(ctx), "/")
	}
	var (
		tried    []string  // "carrier: reason" of each failed attempt or skip, for the final record
		failed   []failure // carriers that failed us, for failover events
		attempts int
	)
	for _, s := range route.Skipped {
		tried = append(tried, s.Carrier+": "+s.Reason)
	}
	for i, cand := range route.Candidates {
		client, ok := p.d.Registry.Client(cand.Carrier)
		cfg, _ := p.d.Registry.Get(cand.Carrier)
		if !ok {
			continue
		}
		done, err := p.d.Breakers.Allow(ctx, cand.Carrier)
		if err != nil {
			// Opened since the route was drawn (or another instance probes it).
			tried = append(tried, cand.Carrier+": "+err.Error())
			continue
		}
		attempts++
		pr := p.request(cfg, id, attempts, req, fallback)
		p.live.expect(id)
		sentAt := time.Now()
		placed, res := p.try(ctx, cfg, client, pr)
		p.d.Metrics.attempts.WithLabelValues(cand.Carrier, res.Outcome.String()).Inc()
		last := i == len(route.Candidates)-1

		switch res.Outcome {
		case carrier.Accepted:
			p.record(ctx, id, attempts, cand.Carrier, "accepted by "+cand.Carrier)
			if err := p.d.Store.LinkAttempt(ctx, id, cand.Carrier, attempts, placed.CarrierCallID); err != nil {
				p.d.Log.Warn("accepted call not linked to its carrier id", "call", id, "carrier", cand.Carrier, "err", err)
			}
			p.live.arm(id, cand.Carrier, cfg.Breaker.CallbackDeadline.Std(), done)
			p.d.Metrics.setup.WithLabelValues(fmt.Sprint(len(failed) > 0)).Observe(time.Since(start).Seconds())
			p.failoverEvents(ctx, id, failed, cand.Carrier)
			return p.d.Store.Call(ctx, id)

		case carrier.Final:
			p.live.cancel(id)
			done(ErrNotCounted)
			p.record(ctx, id, attempts, cand.Carrier, cand.Carrier+": "+res.Reason+" (final, no other carrier tried)")
			state := call.Failed
			if res.Reason == "canceled" {
				state = call.Canceled
			}
			p.end(ctx, id, state, res.Reason)
			p.failoverEvents(ctx, id, failed, "")
			c, err := p.d.Store.Call(ctx, id)
			return c, errors.Join(fmt.Errorf("%w: %s by %s", ErrRefused, res.Reason, cand.Carrier), err)

		default:
			p.live.cancel(id)
			done(fmt.Errorf("%s", res.Reason))
			next := "→ next"
			if last {
				next = "(no carrier left)"
			}
			p.record(ctx, id, attempts, cand.Carrier, cand.Carrier+": "+res.Reason+" "+next)
			p.abandon(ctx, cfg, client, pr, res, sentAt)
			tried = append(tried, cand.Carrier+": "+res.Reason)
			failed = append(failed, failure{carrier: cand.Carrier, reason: res.Reason})
			if !last {
				p.d.Metrics.failovers.WithLabelValues(cand.Carrier).Inc()
			}
		}
	}
	reason := "no carrier is configured"
	if len(tried) > 0 {
		reason = strings.Join(tried, "; ")
	}
	p.end(ctx, id, call.Failed, "no carrier took the call: "+reason)
	p.failoverEvents(ctx, id, failed, "")
	c, err := p.d.Store.Call(ctx, id)
	return c, errors.Join(fmt.Errorf("%w: %s", ErrNoCarrier, reason), err)
}

// request builds one attempt's request with the callback URLs of the carrier's kind; a
// Twilio call falls back to the instance at fallback (if any) for its TwiML.
func (p *Placer) request(cfg carrier.Config, id string, attempt int, req PlaceCall, fallback string) carrier.PlaceRequest {
	base := p.d.PublicURL + "/webhooks/" + cfg.ID
	pr := carrier.PlaceRequest{CallID: id, Attempt: attempt, To: req.To, From: req.From}
	switch cfg.Kind {
	case carrier.Twilio:
		// The attempt travels in the URLs, so a call this attempt created after we gave up on
		// it is recognised by its first callback (see Actions.HangupOrphan).
		q := "?sb_call=" + id + "&sb_attempt=" + strconv.Itoa(attempt)
		pr.VoiceURL = base + "/voice" + q
		pr.StatusURL = base + "/status" + q
		if fallback != "" {
			pr.VoiceFallbackURL = fallback + "/webhooks/" + cfg.ID + "/voice" + q
		}
		if p.d.TwilioStatusOverrides != "" {
			pr.StatusURL += "#" + p.d.TwilioStatusOverrides
		}
	case carrier.Telnyx:
		pr.StatusURL = base + "/events"
		if p.d.TelnyxStreamURL != nil {
			pr.StreamURL = p.d.TelnyxStreamURL(req.MediaURL, cfg.ID, id)
		}
	}
	return pr
}

// record puts one attempt into the call's history. A failure to store it is logged, not
// returned: the attempt happened, and the call must go on to the next carrier regardless.
func (p *Placer) record(ctx context.Context, id string, n int, carrier, detail string) {
	e := call.Event{ID: store.AttemptEventID(id, n), CallID: id, Carrier: carrier, Detail: detail, At: time.Now(),
		Source: call.SourceSwitchboard}
	if _, err := p.d.Store.Apply(ctx, e); err != nil {
		p.d.Log.Warn("attempt not recorded", "call", id, "carrier", carrier, "detail", detail, "err", err)
	}
}

func (p *Placer) end(ctx context.Context, id string, state call.State, detail string) {
	e := call.Event{ID: id + ":ended", CallID: id, State: state, Detail: detail, At: time.Now(),
		Source: call.SourceSwitchboard}
	if _, err := p.d.Store.Apply(ctx, e); err != nil {
		p.d.Log.Error("failed call not recorded as ended", "call", id, "err", err)
	}
}

// failoverEvents records each move from a failed carrier to the next one, for the console.
func (p *Placer) failoverEvents(ctx context.Context, id string, failed []failure, accepted string) {
	for i, f := range failed {
		next := accepted
		if i+1 < len(failed) {
			next = failed[i+1].carrier
		}
		e := carrierdb.Event{Kind: "failover", Carrier: f.carrier, Next: next, CallID: id, Detail: f.reason}
		if err := p.d.Store.AddCarrierEvent(ctx, e); err != nil {
			p.d.Log.Debug("failover event not recorded", "call", id, "err", err)
		}
	}
}

// Run observes callbacks for liveness until ctx ends; pending checks then end uncounted.
func (p *Placer) Run(ctx context.Context) error {
	defer p.live.stop()
	defer p.orphans.stop()
	return p.d.Store.WatchCalls(ctx, p.live.changed, nil)
}
