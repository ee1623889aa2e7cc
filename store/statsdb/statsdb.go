// Package statsdb keeps the last hour of the fleet's figures in Redis for the console's
// charts: carrier callbacks by carrier and outcome, calls in progress, failovers and breaker
// changes, in 10-second buckets that expire a little after an hour. No Prometheus is needed
// to draw them, and every instance adds to the same buckets.
//
// Callbacks are counted on the intake's hot path, so they are counted in memory (Recorder)
// and flushed once a second in one pipelined round trip, never on the request. Failovers and
// breaker changes are rare and are counted where they are recorded (carrierdb, CountEvent),
// in the same round trip as the event itself.
//
// Like carrierdb and agentdb it is built on store's Redis through Redis.Sub.
package statsdb

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
)

const (
	// Step is the width of one bucket.
	Step = 10 * time.Second
	// Kept is how long a bucket lives: the hour the charts show, and a little more.
	Kept = time.Hour + 5*time.Minute
)

// Store reads and writes the buckets. It is safe for concurrent use.
type Store struct {
	r   *store.Redis
	sub store.Sub
	ns  string
	now func() time.Time
}

// New returns the figures' store on r.
func New(r *store.Redis) *Store {
	s := r.Sub()
	return &Store{r: r, sub: s, ns: s.Namespace(), now: time.Now}
}

// bucketOf is the start of the bucket t falls in, in Unix seconds.
func bucketOf(t time.Time) int64 {
	step := int64(Step / time.Second)
	return t.Unix() / step * step
}

// BucketKey names the bucket t falls in, under namespace ns.
func BucketKey(ns string, t time.Time) string {
	return ns + ":stats:" + strconv.FormatInt(bucketOf(t), 10)
}

// Fields of a bucket (a hash).
const (
	callbackPrefix = "cb|"   // cb|<carrier>|<outcome>: callbacks counted
	eventPrefix    = "ev|"   // ev|<kind>|<carrier>: carrier events counted (failover, breaker-open...)
	breakerPrefix  = "br|"   // br|<carrier>: the last breaker change in the bucket
	inProgress     = "calls" // calls in progress, last sampled in the bucket
)

// CountEvent adds a carrier event (a failover, a breaker change) to the bucket of at, on
// pipe: carrierdb calls it in the round trip that records the event. next is the forced
// state of a breaker-forced event.
func CountEvent(ctx context.Context, pipe redis.Pipeliner, ns, kind, carrier, next string, at time.Time) {
	key := BucketKey(ns, at)
	pipe.HIncrBy(ctx, key, eventPrefix+kind+"|"+carrier, 1)
	if state := breakerState(kind, next); state != "" {
		pipe.HSet(ctx, key, breakerPrefix+carrier, state)
	}
	pipe.PExpire(ctx, key, Kept)
}

// breakerState is the state a breaker is in after an event of kind, or "" for an event that
// is not a breaker change. A forced breaker reads "forced-open"/"forced-closed"; handing it
// back ("auto") reads "auto" until its next change says where it went.
func breakerState(kind, next string) string {
	switch kind {
	case "breaker-open":
		return "open"
	case "breaker-closed":
		return "closed"
	case "breaker-probe":
		return "half-open"
	case "breaker-forced":
		if next == "auto" || next == "" {
			return "auto"
		}
		return "forced-" + next
	}
	return ""
}

// CarrierRates is the callbacks per second each carrier sent the fleet over the last
// complete bucket and the current one (10 to 20 s), whatever their outcome; the wallboard
// shows it. A carrier with none is absent.
func (s *Store) CarrierRates(ctx context.Context) (map[string]float64, error) {
	now := s.now()
	ctx, cancel := s.sub.OpCtx(ctx)
	defer cancel()
	pipe := s.sub.Client().Pipeline()
	cur := pipe.HGetAll(ctx, BucketKey(s.ns, now))
	prev := pipe.HGetAll(ctx, BucketKey(s.ns, now.Add(-Step)))
	if _, err := pipe.Exec(ctx); err != nil { // a missing bucket is an empty hash, not an error
		return nil, fmt.Errorf("statsdb: read carrier rates: %w", err)
	}
	span := Step + now.Sub(time.Unix(bucketOf(now), 0))
	out := map[string]float64{}
	for _, h := range []map[string]string{cur.Val(), prev.Val()} {
		for f, v := range h {
			carrier, _, ok := callbackField(f)
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(v, 10, 64)
			out[carrier] += float64(n)
		}
	}
	for c, n := range out {
		out[c] = n / span.Seconds()
	}
	return out, nil
}
