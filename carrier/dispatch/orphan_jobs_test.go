package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
)

// TestOrphanHangupSurvivesItsInstance: instance A fails a call over, and the orphan's first
// callback reaches A, whose webhooks store the hang-up before the 204. A's runner claims the
// job and dies (its lease runs out); instance B, with its own store client and registry, does
// the hang-up, once, and counts it. The live call on the secondary is never touched.
func TestOrphanHangupSurvivesItsInstance(t *testing.T) {
	ns := redistest.Namespace(t)
	a, _ := withWebhooksOn(t, openStore(t, ns), false)
	secondary := newScripted(t, a.st, "secondary")
	primary := newLateTwilio(t, true, func() bool { return secondary.placed.Load() > 0 })
	a.put(t, primary.config(0), secondary.config(1, nil))
	ctx := context.Background()
	to := nextNumber()

	c, err := a.placer.Place(ctx, PlaceCall{To: to})
	if err != nil || c.Carrier != "secondary" {
		t.Fatalf("placed on %q: %v", c.Carrier, err)
	}
	var orphan []string
	// The webhook stores the orphan's event, then its hang-up job, then answers 204: wait for
	// both, or the job may be read between the two.
	redistest.Eventually(t, 5*time.Second, "the orphan's callback stored with its job", func() bool {
		orphan = primary.ringing(to)
		if len(orphan) != 1 || len(orphanEntries(t, a.st, c.ID)) == 0 {
			return false
		}
		_, err := a.st.JobOf(ctx, store.OrphanJobID("primary", orphan[0]))
		return err == nil
	})
	jobID := store.OrphanJobID("primary", orphan[0])
	j, err := a.st.JobOf(ctx, jobID)
	if err != nil || j.Kind != store.JobHangupOrphan || j.CallID != c.ID || j.By != "callback" || j.State != "pending" {
		t.Fatalf("orphan job after the 204 = %+v, %v", j, err)
	}
	// A's runner takes the job and never finishes it.
	claimed, err := a.st.ClaimJobs(ctx, "A", time.Second, 10)
	if err != nil || len(claimed) != 1 || claimed[0].ID != jobID {
		t.Fatalf("A's claim = %+v, %v", claimed, err)
	}

	stB := openStore(t, ns)
	regB := carrier.NewRegistry(stB, carrier.NewHTTPClient(), slog.New(slog.DiscardHandler))
	if err := regB.Load(ctx); err != nil {
		t.Fatal(err)
	}
	mB := NewMetrics(nil)
	b := NewActions(ActionDeps{Store: stB, Registry: regB, Metrics: mB, Instance: "B", Poll: 20 * time.Millisecond})
	runActions(t, b)

	select {
	case sid := <-primary.hungUp:
		if sid != orphan[0] {
			t.Fatalf("B hung up %s, want the orphan %s", sid, orphan[0])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B did not hang the orphan up after A's lease ran out")
	}
	redistest.Eventually(t, 2*time.Second, "the job is done", func() bool {
		j, err = stB.JobOf(ctx, jobID)
		return err == nil && j.State == "done"
	})
	if j.Attempts != 2 {
		t.Errorf("attempts = %d, want 2 (A's lost claim and B's)", j.Attempts)
	}
	// The runner records the job done in Redis and then counts it: wait for the counts.
	redistest.Eventually(t, 2*time.Second, "B counted the orphan's hang-up", func() bool {
		return metricValue(t, mB.orphans.WithLabelValues("primary", "callback", "hung-up")) == 1 &&
			metricValue(t, mB.actions.WithLabelValues("primary", store.JobHangupOrphan, "done")) == 1
	})
	select {
	case sid := <-primary.hungUp:
		t.Errorf("a second hang-up of %s", sid)
	default:
	}
	got, err := stB.Call(ctx, c.ID)
	if err != nil || got.Carrier != "secondary" || got.CarrierCallID != c.CarrierCallID || got.State.Terminal() {
		t.Errorf("live call after the orphan's hang-up: %v %s/%s, %v", got.State, got.Carrier, got.CarrierCallID, err)
	}
	if _, err := stB.JobOf(ctx, store.OrphanJobID("secondary", c.CarrierCallID)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an orphan job for the live call: %v", err)
	}
	if n, err := stB.JobBacklog(ctx); err != nil || n != 0 {
		t.Errorf("jobs left: %d, %v", n, err)
	}
}

func orphanEntries(t *testing.T, st *carrierdb.Store, callID string) []call.Entry {
	t.Helper()
	c, err := st.Call(context.Background(), callID)
	if err != nil {
		t.Fatal(err)
	}
	var out []call.Entry
	for _, h := range c.History {
		if strings.HasPrefix(h.Detail, "orphan of attempt") {
			out = append(out, h)
		}
	}
	return out
}

// TestOrphanJobNeverHangsUpTheLiveCall: an orphan job names its own carrier call and never
// falls back to the record's; one that names the record's live call (which only a bug could
// store) is given up without a request to the carrier. The same job twice is one job.
func TestOrphanJobNeverHangsUpTheLiveCall(t *testing.T) {
	st := openStore(t, redistest.Namespace(t))
	ctx := context.Background()
	const live, orphan = "CA00000000000000000000000000000011", "CA00000000000000000000000000000022"
	var hungUp atomic.Value
	hungUp.Store("")
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		sid := strings.TrimSuffix(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:], ".json")
		hungUp.Store(hungUp.Load().(string) + sid + " ")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"sid": sid, "status": "completed"})
	}))
	t.Cleanup(api.Close)
	reg, cfg := registryWith(t, st, twilioConfig(), api.URL)
	id := store.NewCallID()
	if _, err := st.Apply(ctx, call.Event{ID: "q", CallID: id, State: call.InProgress, Direction: call.Outbound,
		Carrier: cfg.ID, CarrierCallID: live}); err != nil {
		t.Fatal(err)
	}
	metrics := NewMetrics(nil)
	a := NewActions(ActionDeps{Store: st, Registry: reg, Metrics: metrics, Instance: "a", Poll: 20 * time.Millisecond})
	for _, ccid := range []string{live, orphan, orphan} {
		if _, err := a.EnqueueJob(ctx, OrphanJob(id, cfg.ID, ccid, "lookup")); err != nil {
			t.Fatal(err)
		}
	}
	runActions(t, a)
	redistest.Eventually(t, 5*time.Second, "both jobs over", func() bool {
		l, err1 := st.JobOf(ctx, store.OrphanJobID(cfg.ID, live))
		o, err2 := st.JobOf(ctx, store.OrphanJobID(cfg.ID, orphan))
		return err1 == nil && err2 == nil && l.State == "failed" && o.State == "done"
	})
	if got := hungUp.Load().(string); got != orphan+" " {
		t.Fatalf("carrier asked to hang up %q, want only the orphan", got)
	}
	if j, _ := st.JobOf(ctx, store.OrphanJobID(cfg.ID, live)); !strings.Contains(j.LastError, "live call") {
		t.Errorf("the live call's job failed with %q", j.LastError)
	}
	if n := metricValue(t, metrics.orphans.WithLabelValues(cfg.ID, "lookup", "failed")); n != 1 {
		t.Errorf("orphan hang-ups failed = %v, want 1", n)
	}
	if c, _ := st.Call(ctx, id); c.State != call.InProgress {
		t.Errorf("live call is %v, want in-progress", c.State)
	}
}
