package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
)

// Actions runs the carrier actions owed after an acknowledgement: answering an inbound
// Telnyx call, hanging a call up, letting go of an inbound Telnyx call nobody can take,
// hanging up an orphan (a call an abandoned attempt created; see orphans). Each is
// a job in Redis (store.Job), stored before the webhook or API request that caused it is
// acknowledged, and done by whichever instance claims it first. A claim is a lease: the jobs of
// an instance that dies are claimed again by another once their lease runs out. A job that
// fails is retried with backoff up to MaxAttempts, then given up with its reason recorded.
//
// Telnyx commands carry a command_id made of the action and the call control id, the same on
// every attempt of a job; Telnyx ignores a repeat within 60 s, which covers a job's retries
// (about 35 s with the defaults) when the first attempt did reach it.
type Actions struct {
	d    ActionDeps
	kick chan struct{}
}

// actionStore is what running actions needs; *carrierdb.Store implements it.
type actionStore interface {
	EnqueueJob(ctx context.Context, j store.Job) (bool, error)
	ClaimJobs(ctx context.Context, holder string, lease time.Duration, max int) ([]store.Claimed, error)
	CompleteJob(ctx context.Context, c store.Claimed) error
	FailJob(ctx context.Context, c store.Claimed, reason string) error
	RetryJob(ctx context.Context, c store.Claimed, delay time.Duration, reason string) error
	JobBacklog(ctx context.Context) (int64, error)
	Call(ctx context.Context, id string) (call.Call, error)
	Apply(ctx context.Context, e call.Event) (store.Applied, error)
	AddCarrierEvent(ctx context.Context, e carrierdb.Event) error
}

// inboundPreparer decides, just before an inbound Telnyx call is answered, whether it is
// taken (offered to the agents) and where its media must go. It may run more than once for
// one call (a job retried, or taken over after its runner died), so it must be idempotent.
type inboundPreparer interface {
	PrepareAnswer(ctx context.Context, j store.Job) (streamURL string, taken bool, err error)
}

// ActionDeps are what Actions need. Store and Registry are required.
type ActionDeps struct {
	Store    actionStore
	Registry *carrier.Registry
	// Inbound decides about inbound calls before they are answered; nil answers every call
	// with the job's stream URL.
	Inbound  inboundPreparer
	Metrics  *Metrics
	Log      *slog.Logger
	Instance string // this process among those sharing Redis, for claims

	Poll        time.Duration // how often due jobs are looked for; default 200 ms
	Lease       time.Duration // how long a claim holds; default 10 s
	MaxAttempts int           // attempts before a job is given up; default 8
	Backoff     time.Duration // first retry delay, doubling up to 10 s; default 500 ms
	Workers     int           // jobs run at once by this instance; default 16
}

// NewActions returns a runner; Run must be running for this instance to do any job.
func NewActions(d ActionDeps) *Actions {
	if d.Metrics == nil {
		d.Metrics = NewMetrics(nil)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Poll <= 0 {
		d.Poll = 200 * time.Millisecond
	}
	if d.Lease <= 0 {
		d.Lease = 10 * time.Second
	}
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = 8
	}
	if d.Backoff <= 0 {
		d.Backoff = 500 * time.Millisecond
	}
	if d.Workers <= 0 {
		d.Workers = 16
	}
	return &Actions{d: d, kick: make(chan struct{}, 1)}
}

// EnqueueJob stores j unless a job with its id exists (a duplicate or replayed request), and
// wakes this instance's runner. It reports whether j is new; once it returns nil, j is
// durable and the request that caused it may be acknowledged.
func (a *Actions) EnqueueJob(ctx context.Context, j store.Job) (bool, error) {
	created, err := a.d.Store.EnqueueJob(ctx, j)
	if err == nil && created {
		a.wake()
	}
	return created, err
}

// Hangup stores the job that ends callID at its carrier, asked for by by.
func (a *Actions) Hangup(ctx context.Context, c call.Call, by string) error {
	_, err := a.EnqueueJob(ctx, store.Job{ID: store.JobID(store.JobHangup, c.ID), Kind: store.JobHangup, CallID: c.ID,
		Carrier: c.Carrier, CarrierCallID: c.CarrierCallID, By: by})
	return err
}

// Reject stores the job that lets go of an inbound Telnyx call nobody can take.
func (a *Actions) Reject(ctx context.Context, c call.Call, by string) error {
	_, err := a.EnqueueJob(ctx, store.Job{ID: store.JobID(store.JobReject, c.ID), Kind: store.JobReject, CallID: c.ID,
		Carrier: c.Carrier, CarrierCallID: c.CarrierCallID, By: by})
	return err
}

func (a *Actions) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run claims and does jobs until ctx ends, then waits for the jobs it started. Jobs cut short
// by the end are claimed again by another instance (or this one, restarted) after their lease.
func (a *Actions) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, a.d.Workers)
	tick := time.NewTicker(a.d.Poll)
	defer tick.Stop()
	var lastCount time.Time
	for {
		free := a.d.Workers - len(slots)
		if free > 0 {
			claimed, err := a.d.Store.ClaimJobs(ctx, a.d.Instance, a.d.Lease, free)
			if err != nil && ctx.Err() == nil {
				a.d.Log.Debug("carrier actions not claimed", "err", err)
			}
			for _, c := range claimed {
				slots <- struct{}{}
				wg.Go(func() {
					defer func() { <-slots }()
					a.do(ctx, c)
				})
			}
			if len(claimed) == free {
				a.wake() // there may be more
			}
		}
		if time.Since(lastCount) >= time.Second {
			if n, err := a.d.Store.JobBacklog(ctx); err == nil {
				a.d.Metrics.actionBacklog.Set(float64(n))
			}
			lastCount = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-a.kick:
		}
	}
}

// errGiveUp marks a failure that retrying cannot mend.
var errGiveUp = errors.New("given up")

func giveUp(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errGiveUp, fmt.Sprintf(format, args...))
}

// do runs one claimed job under a deadline inside its lease and records the outcome.
func (a *Actions) do(ctx context.Context, c store.Claimed) {
	jobCtx, cancel := context.WithTimeout(ctx, a.d.Lease*2/3)
	var err error
	switch c.Kind {
	case store.JobAnswer:
		err = a.answer(jobCtx, c)
	case store.JobHangup:
		err = a.hangup(jobCtx, c, false)
	case store.JobReject:
		err = a.hangup(jobCtx, c, true)
	case store.JobHangupOrphan:
		err = a.hangupOrphan(jobCtx, c)
	case store.JobRestream:
		err = a.restream(jobCtx, c)
	default:
		err = giveUp("unknown job kind %q", c.Kind)
	}
	cancel()
	if ctx.Err() != nil {
		return // shutting down: the lease hands the job to another instance
	}
	// The outcome is written even if the job's own deadline passed.
	ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	result := "done"
	switch {
	case err == nil:
		err = a.d.Store.CompleteJob(ctx, c)
	case errors.Is(err, errGiveUp) || c.Attempt >= a.d.MaxAttempts:
		result = "failed"
		reason := err.Error()
		a.d.Log.Warn("carrier action given up", "job", c.ID, "carrier", c.Carrier, "call", c.CallID, "attempt", c.Attempt, "reason", reason)
		if err = a.d.Store.FailJob(ctx, c, reason); err == nil {
			if err := a.d.Store.AddCarrierEvent(ctx, carrierdb.Event{Kind: "action-failed", Carrier: c.Carrier, CallID: c.CallID,
				Detail: c.Kind + " given up after " + fmt.Sprint(c.Attempt) + " attempts: " + reason}); err != nil {
				a.d.Log.Warn("carrier event not recorded", "job", c.ID, "err", err)
			}
		}
	default:
		result = "retry"
		// Debug: during a carrier outage every job retries; the metric counts them, and a
		// job that gives up is logged at warn.
		a.d.Log.Debug("carrier action failed; retrying", "job", c.ID, "carrier", c.Carrier, "attempt", c.Attempt, "err", err)
		err = a.d.Store.RetryJob(ctx, c, a.backoff(c.Attempt), err.Error())
	}
	if errors.Is(err, store.ErrLeaseLost) {
		result = "lease-lost"
	} else if err != nil {
		// The outcome is not recorded: the lease runs out and the job is done again, which
		// every kind tolerates.
		a.d.Log.Warn("carrier action outcome not recorded", "job", c.ID, "err", err)
	}
	a.d.Metrics.actions.WithLabelValues(c.Carrier, c.Kind, result).Inc()
	if c.Kind == store.JobHangupOrphan {
		a.countOrphan(c, result)
	}
}

func (a *Actions) backoff(attempt int) time.Duration {
	d := a.d.Backoff
	for range attempt - 1 {
		if d >= 10*time.Second {
			break
		}
		d *= 2
	}
	return min(d, 10*time.Second)
}

// answer offers an inbound Telnyx call to the agents and answers it with its media stream
// pointed where the agent is. Running it twice is harmless: the offer is made once (the store
// keeps it, and a second PrepareAnswer finds it and sends no second ring), and the second
// Answer carries the same command_id, which Telnyx ignores within 60 s; later, Telnyx refuses
// to answer a call twice.
func (a *Actions) answer(ctx context.Context, c store.Claimed) error {
	tx, err := a.telnyx(c.Carrier)
	if err != nil {
		return err
	}
	// A call that ended while its job waited (the caller gave up during a lease take-over)
	// is offered to nobody: no agent is rung for a dead call.
	if a.ended(ctx, c.CallID) {
		return nil
	}
	url := c.StreamURL
	if a.d.Inbound != nil {
		u, taken, err := a.d.Inbound.PrepareAnswer(ctx, c.Job)
		switch {
		case err != nil:
			return err
		case !taken:
			res := tx.Reject(ctx, c.CarrierCallID)
			return outcomeErr(res)
		case u != "":
			url = u
		}
	}
	// The caller may have hung up first: nothing left to answer.
	return endedIsDone(tx.Answer(ctx, c.CarrierCallID, url, c.CallID))
}

// restream starts a live Telnyx call's media stream again, to the job's stream URL (see
// webhooks' oweRestream). A call that ended meanwhile needs nothing.
func (a *Actions) restream(ctx context.Context, c store.Claimed) error {
	tx, err := a.telnyx(c.Carrier)
	if err != nil {
		return err
	}
	if a.ended(ctx, c.CallID) {
		return nil
	}
	return endedIsDone(tx.StartStream(ctx, c.CarrierCallID, c.StreamURL))
}

// ended reports whether callID's record says the call is over (a job on it has nothing left
// to do); a record that cannot be read is taken as live, and the carrier will say.
func (a *Actions) ended(ctx context.Context, callID string) bool {
	cl, err := a.d.Store.Call(ctx, callID)
	return err == nil && cl.State.Terminal()
}

// endedIsDone is outcomeErr for a Telnyx command on a call that may have ended meanwhile:
// "call has already ended" (90018) leaves nothing to do.
func endedIsDone(r carrier.Result) error {
	if r.Code == carrier.TelnyxCallEnded {
		return nil
	}
	return outcomeErr(r)
}

// hangup ends a call at its carrier. A reject lets go of an inbound Telnyx call: declined
// with busy if it was never answered, hung up if it was.
func (a *Actions) hangup(ctx context.Context, c store.Claimed, reject bool) error {
	cl, err := a.d.Store.Call(ctx, c.CallID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return giveUp("no such call")
	case err != nil:
		return err
	case cl.State.Terminal():
		return nil // ended already: nothing to do
	}
	carrierID, ccid := cl.Carrier, cl.CarrierCallID
	if ccid == "" {
		carrierID, ccid = c.Carrier, c.CarrierCallID
	}
	if carrierID == "" || ccid == "" {
		// Placement may still be in flight; the next attempt sees its carrier's call id.
		return errors.New("the call has no carrier call yet")
	}
	client, ok := a.d.Registry.Client(carrierID)
	if !ok {
		return giveUp("carrier %q is not configured", carrierID)
	}
	if tx, isTelnyx := client.(*carrier.TelnyxClient); isTelnyx && reject && cl.State.Rank() < call.InProgress.Rank() {
		return outcomeErr(tx.Reject(ctx, ccid))
	}
	tw, isTwilio := client.(*carrier.TwilioClient)
	if !isTwilio {
		return outcomeErr(client.Hangup(ctx, ccid))
	}
	status, res := tw.HangupStatus(ctx, ccid)
	if res.Outcome == carrier.Accepted {
		a.applyAnswer(ctx, c, cl, status)
	}
	return outcomeErr(res)
}

// applyAnswer stores what Twilio said about the call in its answer to the hang-up, as an
// event through the same path as callbacks (deduplicated, forward only).
func (a *Actions) applyAnswer(ctx context.Context, c store.Claimed, cl call.Call, status string) {
	state, err := call.ParseState(status)
	if err != nil {
		return
	}
	e := call.Event{ID: "api:" + c.ID + ":" + status, CallID: cl.ID, Carrier: cl.Carrier, CarrierCallID: cl.CarrierCallID,
		State: state, At: time.Now(), Detail: "carrier's answer to our hang-up (" + c.By + ")", Source: call.SourceAPI}
	if _, err := a.d.Store.Apply(ctx, e); err != nil {
		a.d.Log.Info("carrier's answer to a hang-up not stored; its callback will tell", "call", cl.ID, "err", err)
	}
}

func (a *Actions) telnyx(carrierID string) (*carrier.TelnyxClient, error) {
	client, ok := a.d.Registry.Client(carrierID)
	if !ok {
		return nil, giveUp("carrier %q is not configured", carrierID)
	}
	tx, ok := client.(*carrier.TelnyxClient)
	if !ok {
		return nil, giveUp("carrier %q is not a Telnyx carrier", carrierID)
	}
	return tx, nil
}

// outcomeErr turns a carrier's answer into a job outcome: accepted is done, final (the call
// is gone, the request is refused) is given up, anything else is tried again.
func outcomeErr(r carrier.Result) error {
	switch r.Outcome {
	case carrier.Accepted:
		return nil
	case carrier.Final:
		return giveUp("%s", r.String())
	}
	return errors.New(r.String())
}

// PrepareFunc adapts a function to what ActionDeps.Inbound needs.
type PrepareFunc func(ctx context.Context, j store.Job) (streamURL string, taken bool, err error)

// PrepareAnswer calls f.
func (f PrepareFunc) PrepareAnswer(ctx context.Context, j store.Job) (string, bool, error) {
	return f(ctx, j)
}
