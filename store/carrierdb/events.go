package carrierdb

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store/statsdb"
)

// Event is something the admin console shows under "recent": a failover (a call moved
// from one carrier to the next) or a breaker opening or closing. Every instance writes to the
// same bounded stream, so the console shows the whole fleet.
type Event struct {
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`    // failover, breaker-open, breaker-closed, breaker-probe, breaker-forced, action-failed
	Carrier string    `json:"carrier"` // the carrier the event is about (for a failover: the one failed)
	Next    string    `json:"next,omitempty"`
	CallID  string    `json:"call_id,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

const eventLimit = 1000

func (k keys) carrierEvents() string { return k.ns + ":carrier-events" }

// AddCarrierEvent appends e to the recent carrier events.
func (r *Store) AddCarrierEvent(ctx context.Context, e Event) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	if e.At.IsZero() {
		e.At = time.Now()
	}
	// The charts count it too, in the same round trip (statsdb).
	_, err := r.sub.Client().Pipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: r.keys.carrierEvents(), MaxLen: eventLimit, Approx: true,
			Values: []any{"at", e.At.UnixMilli(), "kind", e.Kind, "carrier", e.Carrier, "next", e.Next,
				"call", e.CallID, "detail", e.Detail}})
		statsdb.CountEvent(ctx, p, r.sub.Namespace(), e.Kind, e.Carrier, e.Next, e.At)
		return nil
	})
	if err != nil {
		return fmt.Errorf("carrierdb: add carrier event: %w", err)
	}
	return nil
}

// CarrierEvents returns up to n of the newest carrier events, newest first.
func (r *Store) CarrierEvents(ctx context.Context, n int64) ([]Event, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	msgs, err := r.sub.Client().XRevRangeN(ctx, r.keys.carrierEvents(), "+", "-", n).Result()
	if err != nil {
		return nil, fmt.Errorf("carrierdb: read carrier events: %w", err)
	}
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		v := func(k string) string { s, _ := m.Values[k].(string); return s }
		ms, _ := strconv.ParseInt(v("at"), 10, 64)
		out = append(out, Event{At: time.UnixMilli(ms).UTC(), Kind: v("kind"), Carrier: v("carrier"),
			Next: v("next"), CallID: v("call"), Detail: v("detail")})
	}
	return out, nil
}
