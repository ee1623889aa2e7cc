package statsdb

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Window is the figures of a stretch of time, a value per bucket, oldest first; the
// console draws its charts from it.
type Window struct {
	Start   time.Time `json:"start"` // the first bucket's start
	StepS   int       `json:"step_s"`
	Buckets int       `json:"buckets"`
	// Callbacks are per second, by carrier and the intake's outcome (stored, duplicate,
	// stale, rejected, error, foreign, orphan).
	Callbacks []Series `json:"callbacks"`
	// InProgress is the calls in progress, as last sampled in each bucket; null where no
	// instance sampled (no instance was running).
	InProgress []*int64 `json:"in_progress"`
	// Failovers are counted by the carrier that failed.
	Failovers []Series `json:"failovers"`
	// Breakers are each carrier's breaker changes, in order.
	Breakers []BreakerLine `json:"breakers"`
}

// Series is one line of a chart.
type Series struct {
	Carrier string    `json:"carrier"`
	Outcome string    `json:"outcome,omitempty"`
	Values  []float64 `json:"values"`
}

// BreakerLine is one carrier's breaker over the window: the change last seen in each bucket
// that had one.
type BreakerLine struct {
	Carrier string          `json:"carrier"`
	Changes []BreakerChange `json:"changes"`
}

// BreakerChange is a breaker state from a bucket's start on (open, closed, half-open,
// forced-open, forced-closed, auto).
type BreakerChange struct {
	At    time.Time `json:"at"`
	State string    `json:"state"`
}

// MaxWindow is the longest window the buckets hold.
const MaxWindow = time.Hour

// Window reads the buckets of the last d (at most MaxWindow), the current one included, in
// one pipelined round trip.
func (s *Store) Window(ctx context.Context, d time.Duration) (Window, error) {
	if d <= 0 || d > MaxWindow {
		return Window{}, fmt.Errorf("statsdb: a window of %v: want up to %v", d, MaxWindow)
	}
	now := s.now()
	n := int((d + Step - 1) / Step)
	first := time.Unix(bucketOf(now), 0).Add(-time.Duration(n-1) * Step)
	ctx, cancel := s.sub.OpCtx(ctx)
	defer cancel()
	pipe := s.sub.Client().Pipeline()
	cmds := make([]*redis.MapStringStringCmd, n)
	for i := range cmds {
		cmds[i] = pipe.HGetAll(ctx, BucketKey(s.ns, first.Add(time.Duration(i)*Step)))
	}
	if _, err := pipe.Exec(ctx); err != nil { // a missing bucket is an empty hash, not an error
		return Window{}, fmt.Errorf("statsdb: read the last %v: %w", d, err)
	}
	w := Window{Start: first.UTC(), StepS: int(Step / time.Second), Buckets: n, InProgress: make([]*int64, n),
		Callbacks: []Series{}, Failovers: []Series{}, Breakers: []BreakerLine{}}
	callbacks, failovers := map[[2]string][]float64{}, map[string][]float64{}
	breakers := map[string][]BreakerChange{}
	for i, cmd := range cmds {
		at := first.Add(time.Duration(i) * Step).UTC()
		for f, v := range cmd.Val() {
			num, _ := strconv.ParseInt(v, 10, 64)
			switch {
			case f == inProgress:
				w.InProgress[i] = &num
			case strings.HasPrefix(f, callbackPrefix):
				carrier, outcome, _ := callbackField(f)
				k := [2]string{carrier, outcome}
				if callbacks[k] == nil {
					callbacks[k] = make([]float64, n)
				}
				callbacks[k][i] = float64(num) / Step.Seconds()
			case strings.HasPrefix(f, eventPrefix+"failover|"):
				carrier := strings.TrimPrefix(f, eventPrefix+"failover|")
				if failovers[carrier] == nil {
					failovers[carrier] = make([]float64, n)
				}
				failovers[carrier][i] = float64(num)
			case strings.HasPrefix(f, breakerPrefix):
				carrier := strings.TrimPrefix(f, breakerPrefix)
				breakers[carrier] = append(breakers[carrier], BreakerChange{At: at, State: v})
			}
		}
	}
	for k, v := range callbacks {
		w.Callbacks = append(w.Callbacks, Series{Carrier: k[0], Outcome: k[1], Values: v})
	}
	sort.Slice(w.Callbacks, func(i, j int) bool {
		a, b := w.Callbacks[i], w.Callbacks[j]
		return a.Carrier < b.Carrier || a.Carrier == b.Carrier && a.Outcome < b.Outcome
	})
	for c, v := range failovers {
		w.Failovers = append(w.Failovers, Series{Carrier: c, Values: v})
	}
	sort.Slice(w.Failovers, func(i, j int) bool { return w.Failovers[i].Carrier < w.Failovers[j].Carrier })
	for c, v := range breakers {
		w.Breakers = append(w.Breakers, BreakerLine{Carrier: c, Changes: v})
	}
	sort.Slice(w.Breakers, func(i, j int) bool { return w.Breakers[i].Carrier < w.Breakers[j].Carrier })
	return w, nil
}

// callbackField splits cb|<carrier>|<outcome>.
func callbackField(f string) (carrier, outcome string, ok bool) {
	rest, ok := strings.CutPrefix(f, callbackPrefix)
	if !ok {
		return "", "", false
	}
	carrier, outcome, ok = strings.Cut(rest, "|")
	return carrier, outcome, ok
}
