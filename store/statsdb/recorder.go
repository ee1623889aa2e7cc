package statsdb

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Recorder counts one instance's carrier callbacks in memory and adds them to the shared
// buckets once a second, so counting costs a request a map increment under a lock and no
// round trip. Run owns the flushing.
type Recorder struct {
	st  *Store
	log *slog.Logger

	flushing sync.Mutex // one flush at a time: each swaps the maps
	mu       sync.Mutex
	counts   map[callbackKey]int64
	spare    map[callbackKey]int64 // the other map, swapped in on each flush: no allocation per second
}

type callbackKey struct{ carrier, outcome string }

// NewRecorder returns a recorder that flushes to s.
func (s *Store) NewRecorder(log *slog.Logger) *Recorder {
	return &Recorder{st: s, log: log, counts: map[callbackKey]int64{}, spare: map[callbackKey]int64{}}
}

// Callback counts one carrier request by carrier and the intake's outcome. It is called on
// every callback and does no I/O.
func (r *Recorder) Callback(carrier, outcome string) {
	r.mu.Lock()
	r.counts[callbackKey{carrier, outcome}]++
	r.mu.Unlock()
}

// Run flushes every second until ctx ends, then once more so the last second is kept.
func (r *Recorder) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			defer cancel()
			return r.Flush(last)
		case <-tick.C:
			if err := r.Flush(ctx); err != nil {
				r.log.Debug("figures not flushed; kept for the next second", "err", err)
			}
		}
	}
}

// Flush adds what was counted since the last flush to the current bucket, with a sample of
// the calls in progress, in one pipelined round trip. Counts that could not be written are
// kept for the next flush.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushing.Lock()
	defer r.flushing.Unlock()
	r.mu.Lock()
	counts := r.counts
	r.counts, r.spare = r.spare, nil
	r.mu.Unlock()

	active, err := r.st.r.ActiveCount(ctx)
	if err == nil {
		err = r.write(ctx, counts, active)
	}

	r.mu.Lock()
	if err != nil {
		for k, n := range counts {
			r.counts[k] += n
		}
	}
	clear(counts)
	r.spare = counts
	r.mu.Unlock()
	return err
}

func (r *Recorder) write(ctx context.Context, counts map[callbackKey]int64, active int64) error {
	ctx, cancel := r.st.sub.OpCtx(ctx)
	defer cancel()
	key := BucketKey(r.st.ns, r.st.now())
	_, err := r.st.sub.Client().Pipelined(ctx, func(p redis.Pipeliner) error {
		for k, n := range counts {
			p.HIncrBy(ctx, key, callbackPrefix+k.carrier+"|"+k.outcome, n)
		}
		p.HSet(ctx, key, inProgress, active)
		p.PExpire(ctx, key, Kept)
		return nil
	})
	return err
}
