package reconcile

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
)

// statusAPI is a Twilio-compatible call-status API whose answer per call a test sets. It
// records when each call was looked up and how many look-ups of one call overlapped.
type statusAPI struct {
	srv     *httptest.Server
	latency time.Duration
	mu      sync.Mutex
	answer  map[string]func(w http.ResponseWriter) // call sid -> answer
	gets    map[string][]time.Time
	inside  map[string]int
	overlap atomic.Int32 // look-ups of one call that overlapped another of the same call
}

func newStatusAPI(t *testing.T) *statusAPI {
	a := &statusAPI{answer: map[string]func(http.ResponseWriter){}, gets: map[string][]time.Time{}, inside: map[string]int{}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *statusAPI) serve(w http.ResponseWriter, r *http.Request) {
	sid, _ := strings.CutSuffix(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:], ".json")
	a.mu.Lock()
	a.gets[sid] = append(a.gets[sid], time.Now())
	a.inside[sid]++
	if a.inside[sid] > 1 {
		a.overlap.Add(1)
	}
	answer := a.answer[sid]
	a.mu.Unlock()
	defer func() { a.mu.Lock(); a.inside[sid]--; a.mu.Unlock() }()
	if a.latency > 0 {
		select {
		case <-time.After(a.latency):
		case <-r.Context().Done():
			return
		}
	}
	if answer == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	answer(w)
}

func (a *statusAPI) set(sid string, answer func(http.ResponseWriter)) {
	a.mu.Lock()
	a.answer[sid] = answer
	a.mu.Unlock()
}

func (a *statusAPI) lookups(sid string) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.gets[sid]...)
}

func twilioStatus(status string) func(http.ResponseWriter) {
	end := "null"
	if status == "completed" || status == "busy" {
		end = `"` + time.Now().Add(-time.Second).UTC().Format(time.RFC1123Z) + `"`
	}
	return answerWith(http.StatusOK, fmt.Sprintf(`{"sid":"x","status":%q,"end_time":%s,"duration":null}`, status, end))
}

func answerWith(status int, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

// reconcileRig is a store with one twilio carrier whose status API is a statusAPI.
type reconcileRig struct {
	ns  string
	st  *carrierdb.Store
	reg *carrier.Registry
	api *statusAPI
}

func newReconcileRig(t *testing.T) *reconcileRig {
	t.Helper()
	ns := redistest.Namespace(t)
	g := &reconcileRig{ns: ns, st: openStore(t, ns), api: newStatusAPI(t)}
	g.reg = g.registry(t, g.st)
	cfg := twilioConfig()
	cfg.ID, cfg.APIURL = "tw", g.api.srv.URL
	if _, err := g.reg.Put(context.Background(), cfg, "test"); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *reconcileRig) registry(t *testing.T, st *carrierdb.Store) *carrier.Registry {
	t.Helper()
	reg := carrier.NewRegistry(st, carrier.NewHTTPClient(), slog.New(slog.DiscardHandler))
	if err := reg.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return reg
}

// start runs a reconciler (an instance of its own: its own store client) until the test ends.
func (g *reconcileRig) start(t *testing.T, tweak func(*Deps)) *Reconciler {
	t.Helper()
	st := openStore(t, g.ns)
	d := Deps{Store: st, Registry: g.registry(t, st), After: 200 * time.Millisecond, Tick: 20 * time.Millisecond,
		ErrorPause: 200 * time.Millisecond}
	if tweak != nil {
		tweak(&d)
	}
	rc := New(d)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { rc.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return rc
}

// answered stores a call that rang and was answered on carrier tw as sid, as callbacks would.
func (g *reconcileRig) answered(t *testing.T, sid string) string {
	t.Helper()
	id := store.NewCallID()
	for i, e := range []call.Event{
		{ID: id + ":placed", CallID: id, State: call.Queued, Direction: call.Outbound, Source: call.SourceSwitchboard},
		{ID: sid + "/1", CallID: id, Carrier: "tw", CarrierCallID: sid, State: call.Ringing, Source: call.SourceCallback},
		{ID: sid + "/2", CallID: id, Carrier: "tw", CarrierCallID: sid, State: call.InProgress, Source: call.SourceCallback},
	} {
		if _, err := g.st.Apply(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if i == 0 { // the placer claims its attempt before the carrier can call back
			if err := g.st.ClaimAttempt(context.Background(), id, "tw", 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	return id
}

func (g *reconcileRig) call(t *testing.T, id string) call.Call {
	t.Helper()
	c, err := g.st.Call(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// allCompleted is a condition for redistest.Eventually: every call of ids is completed.
func (g *reconcileRig) allCompleted(t *testing.T, ids []string) func() bool {
	return func() bool {
		for _, id := range ids {
			if g.call(t, id).State != call.Completed {
				return false
			}
		}
		return true
	}
}

func TestReconcileLearnsTheEndingOfACallWhoseFinalCallbackWasLost(t *testing.T) {
	g := newReconcileRig(t)
	g.api.set("CAlost", twilioStatus("in-progress"))
	id := g.answered(t, "CAlost")
	g.start(t, nil)
	// The carrier ends the call; its completed callback never comes.
	g.api.set("CAlost", twilioStatus("busy"))
	redistest.Eventually(t, 10*time.Second, "the call reaches its real final state", func() bool {
		return g.call(t, id).State == call.Busy
	})
	c := g.call(t, id)
	last := c.History[len(c.History)-1]
	if last.Source != call.SourceReconciled || !last.Changed || last.State != call.Busy || last.At.IsZero() {
		t.Fatalf("final entry %+v: want a reconciled busy entry with the carrier's end time", last)
	}
	if c.History[1].Source != call.SourceCallback {
		t.Fatalf("callback entry source %v", c.History[1].Source)
	}
	// The ended call leaves the schedule: no more look-ups.
	n := len(g.api.lookups("CAlost"))
	redistest.Eventually(t, 5*time.Second, "the schedule is empty", func() bool {
		due, claimed, err := g.st.ReconcileBacklog(context.Background(), time.Now().Add(time.Hour))
		return err == nil && due == 0 && claimed == 0
	})
	if m := len(g.api.lookups("CAlost")); m != n {
		t.Fatalf("look-ups went on after the call ended: %d then %d", n, m)
	}
}

func TestReconcileLeavesALiveCallLiveAndBacksOff(t *testing.T) {
	g := newReconcileRig(t)
	g.api.set("CAlive", twilioStatus("in-progress"))
	id := g.answered(t, "CAlive")
	g.start(t, func(d *Deps) { d.MaxBackoff = 800 * time.Millisecond })
	redistest.Eventually(t, 15*time.Second, "five look-ups", func() bool { return len(g.api.lookups("CAlive")) >= 5 })
	gets := g.api.lookups("CAlive")
	// Without backoff five look-ups take 5 x 200 ms; with it the gaps go 200, 400, 800, 800 ms.
	if span := gets[4].Sub(gets[0]); span < 1500*time.Millisecond {
		t.Fatalf("five look-ups within %v: no backoff (gaps %v)", span, gaps(gets))
	}
	if first, last := gets[1].Sub(gets[0]), gets[4].Sub(gets[3]); last < first+first/2 || last > 1200*time.Millisecond {
		t.Fatalf("gaps %v: want them doubling up to the 800 ms cap", gaps(gets))
	}
	if c := g.call(t, id); c.State != call.InProgress || len(c.History) != 3 {
		t.Fatalf("live call changed: %v, %d entries", c.State, len(c.History))
	}
}

func gaps(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]).Round(10*time.Millisecond))
	}
	return out
}

func TestReconcileTwoInstancesNeverCheckTheSameCallAtOnce(t *testing.T) {
	g := newReconcileRig(t)
	g.api.latency = 30 * time.Millisecond
	var ids []string
	for i := range 30 {
		sid := fmt.Sprintf("CA%02d", i)
		g.api.set(sid, twilioStatus("in-progress"))
		ids = append(ids, g.answered(t, sid))
	}
	g.start(t, func(d *Deps) { d.Batch = 4 })
	g.start(t, func(d *Deps) { d.Batch = 4 })
	for i := range 30 {
		g.api.set(fmt.Sprintf("CA%02d", i), twilioStatus("completed"))
	}
	redistest.Eventually(t, 15*time.Second, "every call completed", g.allCompleted(t, ids))
	if n := g.api.overlap.Load(); n != 0 {
		t.Fatalf("%d look-ups overlapped another of the same call", n)
	}
	for i, id := range ids {
		if n := len(g.api.lookups(fmt.Sprintf("CA%02d", i))); n != 1 {
			t.Errorf("call %s looked up %d times, want once", id, n)
		}
	}
}

func TestReconcileTakesOverTheClaimOfADeadInstance(t *testing.T) {
	g := newReconcileRig(t)
	g.api.set("CAorphan", twilioStatus("completed"))
	id := g.answered(t, "CAorphan")
	ctx := context.Background()
	// An instance claims the check, then dies (SIGKILL): it never settles.
	if err := g.st.ExpediteReconcile(ctx, time.Now(), id); err != nil {
		t.Fatal(err)
	}
	claims, err := g.st.ClaimReconcile(ctx, time.Now(), 800*time.Millisecond, 10)
	if err != nil || len(claims) != 1 {
		t.Fatalf("claim %v %v", claims, err)
	}
	claimedAt := time.Now()
	g.start(t, nil)
	redistest.Eventually(t, 10*time.Second, "another instance ends the call", func() bool { return g.call(t, id).State == call.Completed })
	if first := g.api.lookups("CAorphan")[0]; first.Sub(claimedAt) < 700*time.Millisecond {
		t.Fatalf("checked %v after the claim, before its lease ran out", first.Sub(claimedAt))
	}
}

func TestReconcileBadAnswersNeverEndACallAndDoNotSpin(t *testing.T) {
	hangs := func(w http.ResponseWriter) {} // the API's latency outlasts the request timeout
	for _, tc := range []struct {
		name   string
		answer func(http.ResponseWriter)
	}{
		{"garbage", answerWith(http.StatusOK, "<html>maintenance</html>")},
		{"not found", answerWith(http.StatusNotFound, `{"code":20404,"message":"The requested resource was not found","status":404}`)},
		{"rate limited", answerWith(http.StatusTooManyRequests, `{"code":20429,"message":"Too Many Requests","status":429}`)},
		{"server error", answerWith(http.StatusServiceUnavailable, `{"status":503,"message":"Try again later"}`)},
		{"timeout", hangs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newReconcileRig(t)
			if tc.name == "timeout" {
				g.api.latency = 5 * time.Second
				cfg, _ := g.reg.Get("tw")
				cfg.RequestTimeout = carrier.Duration(150 * time.Millisecond)
				if _, err := g.reg.Put(context.Background(), cfg, "test"); err != nil {
					t.Fatal(err)
				}
			}
			g.api.set("CAbad", tc.answer)
			id := g.answered(t, "CAbad")
			var logs syncBuffer
			metrics := NewMetrics(nil)
			g.start(t, func(d *Deps) {
				d.Log = slog.New(slog.NewTextHandler(&logs, nil))
				d.Metrics = metrics
				d.MaxBackoff = time.Second
			})
			// Let it be checked several times: the call was quiet for 200 ms at first.
			redistest.Eventually(t, 15*time.Second, "three look-ups", func() bool { return len(g.api.lookups("CAbad")) >= 3 })
			redistest.Eventually(t, 15*time.Second, "a fourth look-up", func() bool { return len(g.api.lookups("CAbad")) >= 4 })
			gets := g.api.lookups("CAbad")
			if span := gets[3].Sub(gets[0]); span < 600*time.Millisecond {
				t.Fatalf("four look-ups within %v (gaps %v): it spins", span, gaps(gets))
			}
			if c := g.call(t, id); c.State != call.InProgress || len(c.History) != 3 {
				t.Fatalf("a %s answer changed the call: %v, %d entries", tc.name, c.State, len(c.History))
			}
			if tc.name != "not found" {
				if n := strings.Count(logs.String(), "call-status API failed"); n != 1 {
					t.Fatalf("logged %d times, want once a minute:\n%s", n, logs.String())
				}
			}
		})
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestReconcileSoonAsksTheCarrierAfterTheGraceEvenForACallWithFreshEvents(t *testing.T) {
	g := newReconcileRig(t)
	g.api.set("CAmedia", twilioStatus("completed"))
	id := g.answered(t, "CAmedia")
	rc := g.start(t, func(d *Deps) { d.After = time.Hour; d.Grace = 100 * time.Millisecond })
	// The call's media stream closed: its final callback may never come.
	if err := rc.Soon(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "the call is checked and ends", func() bool { return g.call(t, id).State == call.Completed })
}

// breakerFlag is a breaker whose state a test sets.
type breakerFlag struct{ open atomic.Bool }

func (b *breakerFlag) State(string) dispatch.BreakerState {
	if b.open.Load() {
		return dispatch.BreakerOpen
	}
	return dispatch.BreakerClosed
}

func TestReconcileProbesACarrierWhoseBreakerIsOpenAndChecksItAtOnceWhenItCloses(t *testing.T) {
	g := newReconcileRig(t)
	g.api.set("CAout", answerWith(http.StatusServiceUnavailable, `{"status":503,"message":"Try again later"}`))
	id := g.answered(t, "CAout")
	var br breakerFlag
	br.open.Store(true)
	metrics := NewMetrics(nil)
	// After and the pause are long: only the breaker closing can bring the check back in time.
	rc := g.start(t, func(d *Deps) {
		d.After, d.Grace, d.ErrorPause, d.Breakers, d.Metrics = time.Hour, 10*time.Millisecond, time.Hour, &br, metrics
	})
	if err := rc.Soon(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "a probe", func() bool { return len(g.api.lookups("CAout")) == 1 })
	if err := rc.Soon(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 10*time.Second, "the next check deferred", func() bool { return counterValue(metrics, "tw", "deferred") > 0 })
	if n := len(g.api.lookups("CAout")); n != 1 {
		t.Fatalf("%d look-ups of a failing carrier whose breaker is open, want the one probe", n)
	}
	g.api.set("CAout", twilioStatus("completed"))
	br.open.Store(false)
	redistest.Eventually(t, 10*time.Second, "the call ends once the breaker closed", func() bool { return g.call(t, id).State == call.Completed })
}

// The 2018 incident: the breaker opened because callbacks stopped, while the carrier's API
// answers. Calls are checked all the same, the first one alone.
func TestReconcileChecksACarrierWhoseBreakerIsOpenWhileItsAPIAnswers(t *testing.T) {
	g := newReconcileRig(t)
	var ids []string
	for i := range 5 {
		sid := fmt.Sprintf("CAcb%d", i)
		g.api.set(sid, twilioStatus("completed"))
		ids = append(ids, g.answered(t, sid))
	}
	var br breakerFlag
	br.open.Store(true)
	g.start(t, func(d *Deps) { d.Breakers = &br })
	redistest.Eventually(t, 10*time.Second, "every call ends while the breaker is open", func() bool {
		for _, id := range ids {
			if g.call(t, id).State != call.Completed {
				return false
			}
		}
		return true
	})
}

func counterValue(m *Metrics, carrier, result string) float64 {
	var out dto.Metric
	m.checks.WithLabelValues(carrier, result).Write(&out)
	return out.GetCounter().GetValue()
}

// Look-ups slow enough to use up the lease of the checks waiting behind them in a batch: those
// are put back rather than run past their lease, so two instances never overlap on a call.
func TestReconcileSlowLookUpsDoNotOutliveTheirLease(t *testing.T) {
	g := newReconcileRig(t)
	cfg, _ := g.reg.Get("tw")
	cfg.RequestTimeout = carrier.Duration(5 * time.Second)
	if _, err := g.reg.Put(context.Background(), cfg, "test"); err != nil {
		t.Fatal(err)
	}
	g.api.latency = 4 * time.Second
	var ids []string
	for i := range 4 {
		sid := fmt.Sprintf("CAslow%d", i)
		g.api.set(sid, twilioStatus("completed"))
		ids = append(ids, g.answered(t, sid))
	}
	first := NewMetrics(nil)
	// Every call is due before the first instance starts, so that it claims all four in one
	// batch even on a loaded machine (created over more than a tick, they could come due in
	// two batches, and no lease would be outlasted).
	lastEvent := time.Now()
	redistest.Eventually(t, 5*time.Second, "every call due", func() bool { return time.Since(lastEvent) > 300*time.Millisecond })
	// The shortest lease (15 s) holds three 4 s look-ups in a row, not four.
	g.start(t, func(d *Deps) { d.Parallel, d.Metrics, d.Lease = 1, first, 15*time.Second })
	// The first instance claims the four checks in one batch, then a second one starts.
	redistest.Eventually(t, 10*time.Second, "the first look-up", func() bool {
		n := 0
		for i := range 4 {
			n += len(g.api.lookups(fmt.Sprintf("CAslow%d", i)))
		}
		return n > 0
	})
	g.start(t, func(d *Deps) { d.Parallel, d.Lease = 1, 15*time.Second })
	redistest.Eventually(t, 60*time.Second, "every call completed", g.allCompleted(t, ids))
	if n := g.api.overlap.Load(); n != 0 {
		t.Fatalf("%d look-ups overlapped another of the same call", n)
	}
	for i := range 4 {
		if n := len(g.api.lookups(fmt.Sprintf("CAslow%d", i))); n != 1 {
			t.Errorf("call %d looked up %d times, want once", i, n)
		}
	}
	if counterValue(first, "tw", "requeued") == 0 {
		t.Fatal("no check was put back: the test did not make look-ups outlast a lease")
	}
}
