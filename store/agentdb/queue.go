package agentdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The queue, as people watch it: the callers waiting for an agent. The offer scripts keep an
// index of them, a sorted set scored by when each call was offered: route adds a new inbound
// offer, answer and end remove it. A call that rings for an agent is still waiting (the caller
// hears ringing until someone answers). Offers expire by themselves, so the index is a hint:
// Waiting reads each offer and drops entries whose offer is gone or no longer waiting.

func (k keys) waiting() string { return k.agentsPrefix() + "waiting" }

// Waiting is the queue at one moment: its callers, longest waiting first.
type Waiting struct {
	// Count is how many callers wait (entries past the page read are not checked, so it may
	// count a few that stopped waiting); Calls holds the first of them, at most the limit asked.
	Count int64
	Calls []Offer
}

// Longest is how long the first caller has waited at now; 0 when nobody waits.
func (w Waiting) Longest(now time.Time) time.Duration {
	if len(w.Calls) == 0 || w.Calls[0].CreatedAt.IsZero() {
		return 0
	}
	return max(0, now.Sub(w.Calls[0].CreatedAt))
}

// Waiting reads the callers waiting for an agent (offers queued or ringing), longest first,
// at most limit of them, and drops index entries that no longer wait.
func (r *Store) Waiting(ctx context.Context, limit int) (Waiting, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	var w Waiting
	var stale []any
	for range 3 { // stale entries are removed as they are found; a few rounds refill the page
		ids, err := r.rdb.ZRange(ctx, r.keys.waiting(), 0, int64(limit)-1).Result()
		if err != nil {
			return Waiting{}, fmt.Errorf("agentdb: read the queue: %w", err)
		}
		offers := make([]*redis.MapStringStringCmd, len(ids))
		var count *redis.IntCmd
		if _, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				offers[i] = p.HGetAll(ctx, r.keys.offer(id))
			}
			count = p.ZCard(ctx, r.keys.waiting())
			return nil
		}); err != nil {
			return Waiting{}, fmt.Errorf("agentdb: read the queue: %w", err)
		}
		w = Waiting{Count: count.Val()}
		stale = stale[:0]
		for i, c := range offers {
			o := offerFrom(c.Val())
			if o.State != OfferQueued && o.State != OfferRinging {
				stale = append(stale, ids[i])
				continue
			}
			if o.Call == "" {
				o.Call = ids[i]
			}
			w.Calls = append(w.Calls, o)
		}
		if len(stale) == 0 {
			return w, nil
		}
		if err := r.rdb.ZRem(ctx, r.keys.waiting(), stale...).Err(); err != nil {
			return Waiting{}, fmt.Errorf("agentdb: tidy the queue: %w", err)
		}
	}
	w.Count -= int64(len(stale))
	return w, nil
}
