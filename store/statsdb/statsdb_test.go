package statsdb

import (
	"context"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
)

func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

// at is a fixed clock 5 s into a bucket, so rates have a known span.
var at = time.Unix(1_800_000_000-1_800_000_000%10+5, 0)

func newStore(t *testing.T, r *store.Redis) *Store {
	s := New(r)
	s.now = func() time.Time { return at }
	return s
}

func count(rec *Recorder, carrier, outcome string, n int) {
	for range n {
		rec.Callback(carrier, outcome)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestRecorderFlushesIntoSharedBuckets: two instances count their callbacks in memory; after
// a flush each, the bucket holds the sum, by carrier and outcome, as callbacks per second.
func TestRecorderFlushesIntoSharedBuckets(t *testing.T) {
	ns := redistest.Namespace(t)
	a, b := newStore(t, storetest.OpenTest(t, ns)), newStore(t, storetest.OpenTest(t, ns))
	ra, rb := a.NewRecorder(slog.New(slog.DiscardHandler)), b.NewRecorder(slog.New(slog.DiscardHandler))
	count(ra, "simtw", "stored", 30)
	count(rb, "simtw", "stored", 20)
	count(ra, "simtw", "duplicate", 5)
	count(rb, "unknown", "rejected", 2)
	ctx := context.Background()
	for _, r := range []*Recorder{ra, rb} {
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A flush with nothing new adds nothing.
	if err := ra.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := a.Window(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if w.Buckets != 360 || w.StepS != 10 || !w.Start.Add(359*Step).Equal(time.Unix(bucketOf(at), 0)) {
		t.Fatalf("window: %d buckets of %ds from %v", w.Buckets, w.StepS, w.Start)
	}
	want := map[[2]string]float64{{"simtw", "duplicate"}: 0.5, {"simtw", "stored"}: 5, {"unknown", "rejected"}: 0.2}
	if len(w.Callbacks) != len(want) {
		t.Fatalf("series: %+v", w.Callbacks)
	}
	for _, s := range w.Callbacks {
		if last := s.Values[359]; !near(last, want[[2]string{s.Carrier, s.Outcome}]) || s.Values[358] != 0 {
			t.Errorf("%s/%s: last bucket %v/s, want %v", s.Carrier, s.Outcome, last, want[[2]string{s.Carrier, s.Outcome}])
		}
	}
	if w.InProgress[359] == nil || *w.InProgress[359] != 0 || w.InProgress[358] != nil {
		t.Fatalf("in progress: %v, %v", w.InProgress[358], w.InProgress[359])
	}
	// The wallboard's rate: the current bucket (5 s in) and the previous one, over 15 s.
	rates, err := a.CarrierRates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rates) != 2 || !near(rates["simtw"], 55.0/15) || !near(rates["unknown"], 2.0/15) {
		t.Fatalf("rates: %v", rates)
	}
	ttl, err := a.sub.Client().PTTL(ctx, BucketKey(a.ns, at)).Result()
	if err != nil || ttl <= time.Hour || ttl > Kept {
		t.Fatalf("bucket ttl %v (%v), want a little over an hour", ttl, err)
	}
}

// TestRecorderSamplesCallsInProgress: each flush records the calls in progress in its bucket.
func TestRecorderSamplesCallsInProgress(t *testing.T) {
	r := storetest.OpenTest(t, redistest.Namespace(t))
	s := newStore(t, r)
	ctx := context.Background()
	for range 3 {
		id := store.NewCallID()
		if _, err := r.Apply(ctx, call.Event{ID: id + ":q", CallID: id, State: call.Queued, Direction: call.Outbound}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.NewRecorder(slog.New(slog.DiscardHandler)).Flush(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := s.Window(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if w.Buckets != 6 || w.InProgress[5] == nil || *w.InProgress[5] != 3 {
		t.Fatalf("in progress: %d buckets, %v", w.Buckets, w.InProgress)
	}
}

// TestRecorderKeepsCountsWhileRedisIsDown: a flush that fails keeps its counts for the next.
func TestRecorderKeepsCountsWhileRedisIsDown(t *testing.T) {
	srv := redistest.NewServer(t)
	r := storetest.OpenWith(t, store.Options{URL: srv.URL(), Namespace: redistest.Namespace(t), OpTimeout: 300 * time.Millisecond})
	s := newStore(t, r)
	rec := s.NewRecorder(slog.New(slog.DiscardHandler))
	count(rec, "simtw", "stored", 7)
	srv.Stop()
	ctx := context.Background()
	if err := rec.Flush(ctx); err == nil {
		t.Fatal("a flush with Redis down succeeded")
	}
	count(rec, "simtw", "stored", 3)
	srv.Start()
	redistest.Eventually(t, 5*time.Second, "a flush once Redis is back", func() bool { return rec.Flush(ctx) == nil })
	w, err := s.Window(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Callbacks) != 1 || !near(w.Callbacks[0].Values[5], 1) {
		t.Fatalf("after Redis came back: %+v", w.Callbacks)
	}
}

// TestCountEventFailoversAndBreakerTimeline: failovers count by the failed carrier; each
// bucket keeps its last breaker change.
func TestCountEventFailoversAndBreakerTimeline(t *testing.T) {
	r := storetest.OpenTest(t, redistest.Namespace(t))
	s := newStore(t, r)
	ctx := context.Background()
	earlier := at.Add(-2 * time.Minute)
	pipe := s.sub.Client().Pipeline()
	CountEvent(ctx, pipe, s.ns, "breaker-open", "primary", "", earlier)
	CountEvent(ctx, pipe, s.ns, "failover", "primary", "secondary", earlier)
	CountEvent(ctx, pipe, s.ns, "failover", "primary", "secondary", earlier)
	CountEvent(ctx, pipe, s.ns, "breaker-probe", "primary", "", at)
	CountEvent(ctx, pipe, s.ns, "breaker-closed", "primary", "", at) // the last in its bucket wins
	CountEvent(ctx, pipe, s.ns, "breaker-forced", "secondary", "open", at)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := s.Window(ctx, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if w.Buckets != 30 || len(w.Failovers) != 1 || w.Failovers[0].Carrier != "primary" || w.Failovers[0].Values[29-12] != 2 {
		t.Fatalf("failovers: %+v", w.Failovers)
	}
	if len(w.Breakers) != 2 {
		t.Fatalf("breakers: %+v", w.Breakers)
	}
	p, sec := w.Breakers[0], w.Breakers[1]
	if p.Carrier != "primary" || len(p.Changes) != 2 || p.Changes[0].State != "open" || p.Changes[1].State != "closed" ||
		!p.Changes[0].At.Equal(time.Unix(bucketOf(earlier), 0)) {
		t.Fatalf("primary's breaker: %+v", p)
	}
	if sec.Carrier != "secondary" || len(sec.Changes) != 1 || sec.Changes[0].State != "forced-open" {
		t.Fatalf("secondary's breaker: %+v", sec)
	}
	if _, err := s.Window(ctx, 2*time.Hour); err == nil {
		t.Fatal("a window longer than the buckets are kept")
	}
}

// BenchmarkRecorderCallback is what counting costs a carrier request: a map increment under
// a lock, from every core at once.
func BenchmarkRecorderCallback(b *testing.B) {
	rec := (&Store{}).NewRecorder(slog.New(slog.DiscardHandler))
	carriers := []string{"primary", "secondary", "unknown"}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			rec.Callback(carriers[i%3], "stored")
			i++
		}
	})
}
