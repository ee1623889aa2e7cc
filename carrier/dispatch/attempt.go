package dispatch

import (
	"context"
	"time"

	"github.com/switchboard/switchboard/carrier"
)

// failure is one carrier that failed a call, and why, for the failover events.
type failure struct{ carrier, reason string }

// Resending a maybe-created request to a carrier that drops repeats (Telnyx, by command_id,
// for 60 s): at most maxResends more sends, none started later than resendBudget after the
// first. With requests capped at MaxRequestTimeout, the last send is far inside the window.
const (
	maxResends   = 2
	resendBudget = 3 * time.Second
)

// try sends attempt pr.Attempt of a call to one carrier. The attempt is claimed first, since
// the carrier's first callback may beat its answer, and a callback from a carrier with no
// claim is refused. A request to a carrier that drops repeated commands is sent again, same
// command_id, when its answer leaves the call maybe created.
func (p *Placer) try(ctx context.Context, cfg carrier.Config, client carrier.Client, pr carrier.PlaceRequest) (carrier.Placed, carrier.Result) {
	if err := p.d.Store.ClaimAttempt(ctx, pr.CallID, cfg.ID, pr.Attempt); err != nil {
		// Nothing was sent. Without the claim the carrier's callbacks would be refused, and
		// no other carrier fares better while the store is down.
		p.d.Log.Error("attempt not claimed; not placed", "call", pr.CallID, "carrier", cfg.ID, "err", err)
		return carrier.Placed{}, carrier.Result{Outcome: carrier.Final, Reason: "store unavailable", Detail: carrier.Clip(err.Error())}
	}
	first := time.Now()
	for sent := 0; ; sent++ {
		placed, res := client.Place(ctx, pr)
		if res.Verdict() != carrier.MaybeCreated || !res.Retryable || cfg.Kind != carrier.Telnyx ||
			sent == maxResends || time.Since(first) >= resendBudget {
			return placed, res
		}
		p.d.Metrics.resends.WithLabelValues(cfg.ID).Inc()
		p.d.Log.Info("create-call maybe created; sent again with the same command_id", "call", pr.CallID,
			"carrier", cfg.ID, "result", res.String())
	}
}

// abandon gives up on a failed attempt before the call moves on. From now on the carrier's
// events for the call are an orphan's (kept, changing nothing), and what the attempt may have
// created is hung up, through a stored job: the call id an early callback revealed at once,
// and, for a Twilio request that may have created a call, whatever a lookup of live calls to
// the callee finds.
func (p *Placer) abandon(ctx context.Context, cfg carrier.Config, client carrier.Client, pr carrier.PlaceRequest, res carrier.Result, sentAt time.Time) {
	early, err := p.d.Store.AbandonAttempt(ctx, pr.CallID, cfg.ID, pr.Attempt)
	if err != nil {
		p.d.Log.Warn("failed attempt not marked abandoned", "call", pr.CallID, "carrier", cfg.ID, "err", err)
	}
	if early != "" {
		p.orphans.hangup(ctx, pr.CallID, cfg.ID, early, "early")
	}
	if res.Verdict() != carrier.MaybeCreated {
		return
	}
	p.d.Log.Info("failed over from a create-call that may have created the call; hunting the orphan",
		"call", pr.CallID, "carrier", cfg.ID, "attempt", pr.Attempt, "result", res.String())
	if lister, ok := client.(callLister); ok {
		p.orphans.hunt(pr.CallID, cfg.ID, lister, pr.To, pr.From, sentAt.Add(-time.Second))
	}
}
