package sim

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/switchboard/switchboard/carrier/sim/internal/delivery"
	"github.com/switchboard/switchboard/webrtc/media"
)

// Call statuses, Twilio's names; Telnyx calls use them too in reports and stats.
const (
	statusQueued     = "queued"
	statusInitiated  = "initiated"
	statusRinging    = "ringing"
	statusInProgress = "in-progress"
	statusCompleted  = "completed"
	statusBusy       = "busy"
	statusNoAnswer   = "no-answer"
	statusCanceled   = "canceled"
)

// Lifecycle events, Twilio's StatusCallbackEvent names.
const (
	evInitiated = "initiated"
	evRinging   = "ringing"
	evAnswered  = "answered"
	evCompleted = "completed"
)

// outcome is what the far end of an outbound call does, by the destination rule.
type outcome int

const (
	answers outcome = iota
	busy
	noAnswer
	invalid
	rejects
)

// outcomeFor applies the destination rule: the last digit of the number decides.
func outcomeFor(to string) outcome {
	if to == "" {
		return answers
	}
	switch to[len(to)-1] {
	case '1':
		return busy
	case '2':
		return noAnswer
	case '3':
		return invalid
	case '4':
		return rejects
	}
	return answers
}

// An action is a request to a call from outside its goroutine: a hangup from Switchboard
// (REST) or from the far end (the Go API), a Telnyx answer or reject. The call's goroutine
// closes done once it has acted, so the caller sees the result.
type action struct {
	op   string
	cmd  telnyxCommand         // Telnyx answer and reject: what the command said
	conv func(context.Context) // actReplace: what the call does from now on
	done chan struct{}
	err  error
}

const (
	actHangup    = "hangup"     // Switchboard hangs up
	actFarHangup = "far-hangup" // the simulated far end hangs up
	actAnswer    = "answer"     // Telnyx: Switchboard answers an inbound call
	actReject    = "reject"     // Telnyx: Switchboard rejects an inbound call
	// actReplace replaces what a live call is doing (its TwiML, its Telnyx stream) with
	// action.conv: a Twilio call update with Twiml or Url, a Telnyx streaming_start.
	actReplace = "replace"
)

var (
	errEnded         = errors.New("call has already ended")
	errNotApplicable = errors.New("not possible in the call's current state")
)

// call is one simulated call. Its lifecycle runs in one goroutine (run), its callbacks go out
// from another (deliver); the fields under mu are what reports read.
type call struct {
	c        *Carrier
	kind     Kind
	sid      string // Twilio CallSid or Telnyx call_control_id
	inbound  bool
	from, to string
	outcome  outcome
	created  time.Time
	// timeout is how long the call rings unanswered before it gives up.
	timeout time.Duration
	// hangupAfter, when set, is how long the far end stays once the call is live.
	hangupAfter time.Duration

	// Twilio: where TwiML comes from (or the TwiML itself) and where callbacks go.
	voiceMethod, voiceURL   string
	fallbackMethod          string // FallbackUrl: asked instead when voiceURL fails
	fallbackURL             string
	twiml                   string
	statusMethod, statusURL string
	events                  map[string]bool

	// Telnyx
	legID, sessionID string
	webhookURL       string

	ctrl     chan *action
	finished chan struct{} // closed when run returns
	outbox   *delivery.Queue
	digits   chan string // DTMF for the open media stream

	// toneMu guards tone, the caller's voice: one generator per call, not per stream, so the
	// tone goes on across a re-point as a caller's voice does (and two streams, a <Start>
	// beside a <Connect>, may read it at once).
	toneMu sync.Mutex
	tone   *media.Tone

	mu          sync.Mutex
	status      string
	seq         int // the next Twilio SequenceNumber
	clientState string
	streamURL   string // Telnyx: the media stream asked for by dial or answer
	answeredAt  time.Time
	endedAt     time.Time
	sipCode     int
	cause       string // Telnyx hangup_cause
	source      string // Telnyx hangup_source
	media       mediaStats
	notes       []string
	lookups     int // REST status look-ups (GET) of the call
}

func (c *Carrier) newCall(kind Kind, inbound bool, from, to string) *call {
	k := &call{
		c: c, kind: kind, inbound: inbound, from: from, to: to,
		outcome:     outcomeFor(to),
		created:     time.Now(),
		ctrl:        make(chan *action),
		finished:    make(chan struct{}),
		outbox:      delivery.NewQueue(),
		digits:      make(chan string, 32),
		status:      statusQueued,
		hangupAfter: c.cfg.HangupAfter,
	}
	if !c.cfg.Echo {
		k.tone = media.NewTone(c.cfg.ToneHz, 0.5)
	}
	if c.cfg.WatchHz > 0 {
		k.media.watch = media.NewToneWatch(c.cfg.WatchHz)
	}
	return k
}

// ringTimeout is how long a call may ring: its own timeout, capped by Config.RingTimeout.
func (c *Carrier) ringTimeout(d time.Duration) time.Duration {
	if rt := c.cfg.RingTimeout; rt > 0 && rt < d {
		return rt
	}
	return d
}

// act hands an action to the call's goroutine and waits until it has been carried out.
func (k *call) act(ctx context.Context, a *action) error {
	a.done = make(chan struct{})
	select {
	case k.ctrl <- a:
	case <-k.finished:
		return errEnded
	case <-ctx.Done():
		return ctx.Err()
	}
	<-a.done
	return a.err
}

func ack(a *action, err error) {
	a.err = err
	close(a.done)
}

func (k *call) run(ctx context.Context) {
	defer close(k.finished)
	defer k.outbox.Close()
	switch {
	case k.inbound && k.kind == Twilio:
		k.setStatus(statusRinging)
		k.emit(evRinging)
		k.live(ctx, k.twilioInbound)
	case k.inbound:
		k.telnyxInbound(ctx)
	default:
		k.outbound(ctx)
	}
}

// outbound runs a call we were asked to place, as the destination rule says.
func (k *call) outbound(ctx context.Context) {
	k.setStatus(statusInitiated)
	k.emit(evInitiated)
	ring := k.c.cfg.Ring
	if k.outcome == busy {
		if !k.ring(ctx, ring) {
			k.end(statusBusy, 486, "user_busy", "callee")
		}
		return
	}
	k.setStatus(statusRinging)
	k.emit(evRinging)
	if k.outcome == noAnswer {
		ring = k.timeout
	}
	if k.ring(ctx, ring) {
		return
	}
	switch k.outcome {
	case noAnswer:
		k.end(statusNoAnswer, 487, "timeout", "callee")
	case rejects:
		k.end(statusNoAnswer, 603, "call_rejected", "callee")
	default:
		k.answer()
		if k.kind == Twilio {
			k.live(ctx, k.twilioOutbound)
		} else {
			k.live(ctx, k.telnyxMedia)
		}
	}
}

// ring lets an outbound call ring for d, acting on hangups meanwhile: Switchboard cancels,
// the far end declines. It reports whether the call is over (or the carrier closing).
func (k *call) ring(ctx context.Context, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return true
		case a := <-k.ctrl:
			switch a.op {
			case actHangup:
				k.end(statusCanceled, 487, "originator_cancel", "caller")
			case actFarHangup:
				k.end(statusNoAnswer, 603, "call_rejected", "callee")
			default:
				ack(a, errNotApplicable)
				continue
			}
			ack(a, nil)
			return true
		}
	}
}

// live runs a call whose parties can talk: conv does what the call is for (runs TwiML,
// streams media) until it returns, either side hangs up, its hang-up time passes
// (Config.HangupAfter, or its InboundRequest's), or the
// carrier closes. An actReplace stops conv (its open stream says stop and closes) and runs
// the action's conv instead, as Twilio does with a call update and Telnyx with
// streaming_start.
func (k *call) live(ctx context.Context, conv func(context.Context)) {
	var (
		stop context.CancelFunc
		done chan struct{}
	)
	begin := func(conv func(context.Context)) {
		var cctx context.Context
		cctx, stop = context.WithCancel(ctx)
		done = make(chan struct{})
		go func(done chan struct{}) { // owned: every way out of live waits for done
			defer close(done)
			conv(cctx)
		}(done)
	}
	begin(conv)
	defer func() { stop() }()
	var farEnd <-chan time.Time
	if d := k.hangupAfter; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		farEnd = t.C
	}
	for {
		select {
		case <-done: // the TwiML is over: Switchboard's application hung up
			k.hangUp(true)
			return
		case <-farEnd:
			stop()
			<-done
			k.hangUp(false)
			return
		case <-ctx.Done():
			<-done
			return
		case a := <-k.ctrl:
			switch a.op {
			case actReplace:
				stop()
				<-done
				begin(a.conv)
				k.c.count(func(s *Stats) { s.Repoints++ })
				ack(a, nil)
				continue
			case actHangup, actFarHangup:
			default:
				ack(a, errNotApplicable)
				continue
			}
			stop()
			<-done
			k.hangUp(a.op == actHangup)
			ack(a, nil)
			return
		}
	}
}

// hangUp ends a live call; byUs says Switchboard's side hung up.
func (k *call) hangUp(byUs bool) {
	// Telnyx names who hung up by role: Switchboard is the caller of outbound calls.
	source := "callee"
	if byUs != k.inbound {
		source = "caller"
	}
	k.mu.Lock()
	answered := !k.answeredAt.IsZero()
	k.mu.Unlock()
	if answered {
		k.end(statusCompleted, 200, "normal_clearing", source)
	} else {
		k.end(statusCanceled, 487, "originator_cancel", source)
	}
}

func (k *call) setStatus(s string) {
	k.mu.Lock()
	k.status = s
	k.mu.Unlock()
}

func (k *call) answer() {
	k.mu.Lock()
	k.status = statusInProgress
	k.answeredAt = time.Now()
	k.mu.Unlock()
	k.emit(evAnswered)
}

// end puts the call in a final status and fires the callback that says so.
func (k *call) end(status string, sip int, cause, source string) {
	k.mu.Lock()
	k.status, k.endedAt, k.sipCode, k.cause, k.source = status, time.Now(), sip, cause, source
	k.media.end(k.endedAt)
	k.mu.Unlock()
	k.emit(evCompleted)
	k.c.count(func(s *Stats) { s.CallsByStatus[status]++ })
	k.c.log.Info("call ended", "kind", k.kind, "sid", k.sid, "status", status, "sip", sip)
}

// emit fires a lifecycle event as the call's kind reports it.
func (k *call) emit(ev string) {
	if k.kind == Twilio {
		k.twilioCallback(ev)
		return
	}
	switch ev {
	case evInitiated:
		k.telnyxWebhook("call.initiated", nil)
	case evAnswered:
		k.telnyxWebhook("call.answered", nil)
	case evCompleted:
		k.telnyxWebhook("call.hangup", nil)
	}
}

// queue hands a fired callback to the call's delivery goroutine.
func (k *call) queue(cb *callback, firedAt time.Time) {
	f, _ := k.c.faultsNow()
	k.c.count(func(s *Stats) { s.CallbacksByEvent[cb.event]++ })
	k.outbox.Push(&delivery.Callback{
		Method: cb.method, URL: cb.url, NotBefore: firedAt.Add(f.CallbackDelay),
		RetryBusy: cb.kind == Telnyx, Render: cb.render,
		Record: func(r delivery.Result) { k.c.recordAttempt(cb, r) },
	})
}

// note keeps something worth knowing about the call for its report: an application error,
// a media stream that failed.
func (k *call) note(s string) {
	k.mu.Lock()
	k.notes = append(k.notes, s)
	k.mu.Unlock()
	k.c.log.Info("call note", "sid", k.sid, "note", s)
}
