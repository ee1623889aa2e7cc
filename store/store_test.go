package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/internal/redisurl"
	"github.com/switchboard/switchboard/store/redistest"
)

// Every goroutine a test starts (subscriptions, batchers, timers, servers) must be gone when
// the package's tests end.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

// open is a store client in the test's namespace on the test Redis, its options changed by
// tweak, closed when the test ends.
func open(t testing.TB, tweak ...func(*Options)) *Redis {
	t.Helper()
	opts := Options{URL: redistest.URL(t), Namespace: redistest.Namespace(t)}
	for _, f := range tweak {
		f(&opts)
	}
	r, err := Open(context.Background(), opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// mustClaim gives carrier attempt n of call id, as the placer does before it sends a request.
func mustClaim(t testing.TB, r *Redis, id, carrier string, n int) {
	t.Helper()
	if err := r.ClaimAttempt(context.Background(), id, carrier, n); err != nil {
		t.Fatal(err)
	}
}

// sameHistory fails unless the stored call's history is the model's (call.Apply's), entry by
// entry, as far as same compares them; t is a test's or a rapid check's.
func sameHistory(t interface {
	Helper()
	Fatalf(string, ...any)
}, stored, model call.Call, same func(s, m call.Entry) bool) {
	t.Helper()
	if len(stored.History) != len(model.History) {
		t.Fatalf("history: store %d entries, domain %d", len(stored.History), len(model.History))
	}
	for i := range stored.History {
		if s, m := stored.History[i], model.History[i]; !same(s, m) {
			t.Fatalf("history[%d]: store %+v, domain %+v", i, s, m)
		}
	}
}

func mustApply(t testing.TB, r *Redis, e call.Event) Applied {
	t.Helper()
	a, err := r.Apply(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestApplyForwardOnlyAndDeduplicated(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	at := time.Date(2018, 11, 5, 14, 47, 1, 0, time.UTC)
	steps := []struct {
		e         call.Event
		outcome   call.Outcome
		wantState call.State
	}{
		{call.Event{ID: "q", CallID: id, State: call.Queued, Direction: call.Outbound, From: "+1", To: "+2", Agent: "ann"}, call.Advanced, call.Queued},
		{call.Event{ID: "r", CallID: id, State: call.Ringing, Carrier: "tw", CarrierCallID: "CA1", At: at}, call.Advanced, call.Ringing},
		{call.Event{ID: "r", CallID: id, State: call.Ringing, Carrier: "tw", CarrierCallID: "CA1", At: at}, call.Duplicate, call.Ringing},
		{call.Event{ID: "i", CallID: id, State: call.Initiated}, call.Recorded, call.Ringing},
		{call.Event{ID: "a", CallID: id, State: call.InProgress}, call.Advanced, call.InProgress},
		{call.Event{ID: "dtmf", CallID: id, Detail: "digit 5"}, call.Recorded, call.InProgress},
		{call.Event{ID: "c", CallID: id, State: call.Completed, Detail: "normal_clearing"}, call.Advanced, call.Completed},
		{call.Event{ID: "b", CallID: id, State: call.Busy}, call.Recorded, call.Completed},
	}
	for i, s := range steps {
		if i == 1 {
			mustClaim(t, r, id, "tw", 1)
		}
		a := mustApply(t, r, s.e)
		if a.Outcome != s.outcome || a.State != s.wantState || a.CallID != id {
			t.Fatalf("step %d (%s): got %+v, want %v %v", i, s.e.ID, a, s.outcome, s.wantState)
		}
	}
	c, err := r.Call(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != call.Completed || c.Direction != call.Outbound || c.From != "+1" || c.To != "+2" ||
		c.Carrier != "tw" || c.CarrierCallID != "CA1" || c.Agent != "ann" {
		t.Fatalf("record: %+v", c)
	}
	var ids []string
	for _, h := range c.History {
		ids = append(ids, h.EventID)
	}
	if want := []string{"q", "r", "i", "a", "dtmf", "c", "b"}; !slices.Equal(ids, want) {
		t.Fatalf("history %v, want %v (arrival order, duplicates once)", ids, want)
	}
	if !c.History[1].At.Equal(at) || !c.History[1].Changed || c.History[2].Changed || c.History[5].Detail != "normal_clearing" {
		t.Fatalf("history entries: %+v", c.History)
	}
	if _, err := r.Call(ctx, "CLnope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown call: %v", err)
	}
}

// TestScriptAgreesWithDomain checks the Lua script against call.Apply, the pure definition of
// a transition: for any arrival order with duplicates, the stored state and history match.
func TestScriptAgreesWithDomain(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	all := append([]call.State{call.Unknown}, call.States...)
	rapid.Check(t, func(t *rapid.T) {
		id := NewCallID()
		n := rapid.IntRange(1, 8).Draw(t, "events")
		var events []call.Event
		for i := range n {
			s := rapid.SampledFrom(all).Draw(t, fmt.Sprintf("state%d", i))
			src := call.Source(rapid.IntRange(int(call.UnknownSource), int(call.SourceSwitchboard)).Draw(t, fmt.Sprintf("source%d", i)))
			e := call.Event{ID: fmt.Sprintf("e%d", i), CallID: id, State: s, Source: src}
			if rapid.Bool().Draw(t, fmt.Sprintf("timed%d", i)) {
				// Carrier times from a few seconds, so that answers and ends tie and cross.
				e.At = time.UnixMilli(1_700_000_000_000 + 1000*int64(rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("at%d", i))))
			}
			if s == call.Completed && rapid.Bool().Draw(t, fmt.Sprintf("ending%d", i)) {
				// A Telnyx hangup: completed if answered, else an unanswered ending.
				e.Unanswered = rapid.SampledFrom([]call.State{call.Canceled, call.NoAnswer, call.Failed}).Draw(t, fmt.Sprintf("unanswered%d", i))
			}
			events = append(events, e)
		}
		var model call.Call
		for i := range rapid.IntRange(n, 2*n).Draw(t, "deliveries") {
			e := events[rapid.IntRange(0, n-1).Draw(t, fmt.Sprintf("pick%d", i))]
			var want call.Outcome
			model, want = call.Apply(model, e, time.Now())
			got, err := r.Apply(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			if got.Outcome != want || got.State != model.State {
				t.Fatalf("delivery %d of %s/%v: store %v %v, domain %v %v", i, e.ID, e.State, got.Outcome, got.State, want, model.State)
			}
		}
		stored, err := r.Call(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sameHistory(t, stored, model, func(s, m call.Entry) bool {
			return s.EventID == m.EventID && s.State == m.State && s.Changed == m.Changed && s.Detail == m.Detail && s.Source == m.Source
		})
	})
}

// TestTelnyxHangupInAnyOrder: a Telnyx call's initiated, answered and hangup events (the
// hangup reports completed if the call was answered, else its cause's ending X), delivered
// in any order with duplicates, end the call the same in the script and in call.Apply:
// completed when it was answered, X when it was not. When the hangup came before the answer
// the first call-detail record says X and a second, marked as a correction of X, completed.
func TestTelnyxHangupInAnyOrder(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	rapid.Check(t, func(t *rapid.T) {
		id := NewCallID()
		x := rapid.SampledFrom([]call.State{call.Canceled, call.NoAnswer, call.Failed, call.Busy}).Draw(t, "X")
		answered := rapid.Bool().Draw(t, "answered")
		at := func(name string, s int64) time.Time {
			if rapid.Bool().Draw(t, name) { // a carrier time, or none
				return time.UnixMilli(1_700_000_000_000 + s*1000)
			}
			return time.Time{}
		}
		events := []call.Event{
			{ID: "initiated", CallID: id, State: call.Initiated, At: at("initiatedAt", 0)},
			{ID: "hangup", CallID: id, State: call.Completed, Unanswered: x, At: at("hangupAt", 2)},
		}
		if answered {
			events = append(events, call.Event{ID: "answered", CallID: id, State: call.InProgress, At: at("answeredAt", 1)})
		}
		var delivered []call.Event
		for i, e := range events {
			for range rapid.IntRange(1, 3).Draw(t, fmt.Sprintf("copies%d", i)) {
				delivered = append(delivered, e)
			}
		}
		delivered = rapid.Permutation(delivered).Draw(t, "arrival")

		var model call.Call
		for i, e := range delivered {
			var want call.Outcome
			model, want = call.Apply(model, e, time.Now())
			got, err := r.Apply(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			if got.Outcome != want || got.State != model.State {
				t.Fatalf("delivery %d of %s: store %v %v, domain %v %v", i, e.ID, got.Outcome, got.State, want, model.State)
			}
		}
		want := x
		if answered {
			want = call.Completed
		}
		stored, err := r.Call(ctx, id)
		if err != nil || stored.State != want || model.State != want {
			t.Fatalf("final: store %v, domain %v, want %v (%v); arrival %v", stored.State, model.State, want, err, ids(delivered))
		}
		cdrs, err := r.RecentCDRs(ctx, 20)
		if err != nil {
			t.Fatal(err)
		}
		var mine []CDR
		for _, c := range slices.Backward(cdrs) {
			if c.CallID == id {
				mine = append(mine, c)
			}
		}
		corrected := answered && slices.IndexFunc(delivered, func(e call.Event) bool { return e.ID == "hangup" }) <
			slices.IndexFunc(delivered, func(e call.Event) bool { return e.ID == "answered" })
		switch {
		case corrected && (len(mine) != 2 || mine[0].State != x || mine[0].Corrects != call.Unknown ||
			mine[1].State != call.Completed || mine[1].Corrects != x || !mine[1].EndedAt.Equal(mine[0].EndedAt)):
			t.Fatalf("CDRs of a corrected ending: %+v", mine)
		case !corrected && (len(mine) != 1 || mine[0].State != want || mine[0].Corrects != call.Unknown):
			t.Fatalf("CDRs: %+v, want one, %v", mine, want)
		}
	})
}

func ids(events []call.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

func TestEventBeforeItsCallIsKnownIsKeptThenApplied(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "created", CallID: id, State: call.Queued, Direction: call.Outbound})
	mustClaim(t, r, id, "tw", 1)

	// The carrier's callback beats the REST answer that would have told us its call id.
	early := call.Event{ID: "CAx/1", Carrier: "tw", CarrierCallID: "CAx", State: call.Ringing, Direction: call.Outbound,
		Source: call.SourceCallback}
	if a := mustApply(t, r, early); !a.Parked {
		t.Fatalf("event for an unknown carrier call id: %+v, want parked", a)
	}
	if a := mustApply(t, r, early); !a.Parked {
		t.Fatalf("retry of the parked event: %+v", a)
	}
	if err := r.Link(ctx, id, "tw", "CAx"); err != nil {
		t.Fatal(err)
	}
	c, err := r.Call(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != call.Ringing || c.CarrierCallID != "CAx" || len(c.History) != 2 {
		t.Fatalf("after link: state %v ccid %q history %d", c.State, c.CarrierCallID, len(c.History))
	}
	if got := c.History[1].Source; got != call.SourceCallback {
		t.Fatalf("parked event's source: %v, want callback (kept through parking)", got)
	}
	// Once linked, the carrier's id resolves directly.
	a := mustApply(t, r, call.Event{ID: "CAx/2", Carrier: "tw", CarrierCallID: "CAx", State: call.InProgress})
	if a.Parked || a.CallID != id || a.State != call.InProgress {
		t.Fatalf("after link: %+v", a)
	}
	byCarrier, err := r.CallByCarrierID(ctx, "CAx", "")
	if err != nil || byCarrier.ID != id {
		t.Fatalf("CallByCarrierID: %v %v", byCarrier.ID, err)
	}
	if n, _ := r.rdb.Exists(ctx, r.keys.pending("CAx")).Result(); n != 0 {
		t.Fatal("parked events were not cleared after they were applied")
	}
}

func TestInboundCallsNeedNoLookup(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	// Status callbacks of an inbound call may arrive in any order, on any instance.
	a := mustApply(t, r, call.Event{ID: "in/2", Carrier: "tx", CarrierCallID: "v3:abc", State: call.InProgress, Direction: call.Inbound})
	b := mustApply(t, r, call.Event{ID: "in/1", Carrier: "tx", CarrierCallID: "v3:abc", State: call.Ringing, Direction: call.Inbound, From: "+15550001"})
	if a.CallID != b.CallID || a.CallID != InboundCallID("tx", "v3:abc") || b.Outcome != call.Recorded {
		t.Fatalf("inbound: %+v %+v", a, b)
	}
	c, err := r.CallByCarrierID(ctx, "v3:abc", "tx")
	if err != nil || c.From != "+15550001" || c.Direction != call.Inbound || c.State != call.InProgress {
		t.Fatalf("inbound by carrier id: %+v %v", c, err)
	}
}

func TestFinishedCallsExpireAndLeaveADetailRecord(t *testing.T) {
	r := open(t, func(o *Options) { o.Retention = time.Hour; o.MaxCallAge = 5 * time.Hour })
	ctx := context.Background()
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "q", CallID: id, State: call.Queued, From: "+1", To: "+2", Carrier: "tw"})
	if ttl := r.rdb.PTTL(ctx, r.keys.call(id)).Val(); ttl <= time.Hour || ttl > 5*time.Hour {
		t.Fatalf("live call TTL %v, want about MaxCallAge", ttl)
	}
	active, err := r.ActiveCalls(ctx, 100)
	if err != nil || len(active) != 1 || active[0].ID != id {
		t.Fatalf("active calls: %v %v", active, err)
	}
	mustApply(t, r, call.Event{ID: "n", CallID: id, State: call.NoAnswer})
	mustApply(t, r, call.Event{ID: "c", CallID: id, State: call.Completed}) // late, absorbed
	for _, k := range []string{r.keys.call(id), r.keys.callLog(id)} {
		if ttl := r.rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > time.Hour {
			t.Fatalf("finished call key %s TTL %v, want within retention", k, ttl)
		}
	}
	cdrs, err := r.RecentCDRs(ctx, 10)
	if err != nil || len(cdrs) != 1 {
		t.Fatalf("CDRs: %v %v (want exactly one per finished call)", cdrs, err)
	}
	if cdrs[0].CallID != id || cdrs[0].State != call.NoAnswer || cdrs[0].From != "+1" || cdrs[0].Carrier != "tw" {
		t.Fatalf("CDR: %+v", cdrs[0])
	}
	if active, _ := r.ActiveCalls(ctx, 100); len(active) != 0 {
		t.Fatalf("finished call still listed active: %v", active)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	r := open(t, func(o *Options) { o.HistoryLimit = 10 })
	id := NewCallID()
	for i := range 500 {
		mustApply(t, r, call.Event{ID: fmt.Sprint(i), CallID: id})
	}
	n := r.rdb.XLen(context.Background(), r.keys.callLog(id)).Val()
	if n > 200 {
		t.Fatalf("log holds %d entries, want it trimmed near 10", n)
	}
}

func TestRedisDownFailsFast(t *testing.T) {
	r := open(t)
	unreachable, err := redisurl.NewClient("redis://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	r.batch.close()
	r.rdb.Close()
	r.rdb, r.batch = unreachable, newBatcher(unreachable, newApplyScript(r.opts, r.keys), nil, replicaPolicy{})
	start := time.Now()
	_, err = r.Apply(context.Background(), call.Event{ID: "x", CallID: NewCallID(), State: call.Ringing})
	if err == nil {
		t.Fatal("Apply succeeded with Redis down")
	}
	if !IsUnavailable(err) {
		t.Fatalf("Redis down is not reported as unavailable: %v", err)
	}
	if IsUnavailable(ErrNotFound) || IsUnavailable(errors.New("bad request")) {
		t.Fatal("ordinary errors reported as unavailable")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Apply with Redis down took %v", took)
	}
}

func TestEmbeddedRunsTheSameScripts(t *testing.T) {
	r := open(t, func(o *Options) { *o = Options{} })
	if !r.Embedded() {
		t.Fatal("empty URL must mean embedded")
	}
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "1", CallID: id, State: call.Ringing})
	if a := mustApply(t, r, call.Event{ID: "2", CallID: id, State: call.Busy}); a.State != call.Busy {
		t.Fatalf("embedded: %+v", a)
	}
}

// TestScriptsSurviveAFlush: after Redis loses its scripts (restart, failover, SCRIPT FLUSH),
// the next batch loads them again rather than failing.
func TestScriptsSurviveAFlush(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "1", CallID: id, State: call.Ringing})
	if err := r.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if a := mustApply(t, r, call.Event{ID: "2", CallID: id, State: call.InProgress}); a.State != call.InProgress {
		t.Fatalf("after SCRIPT FLUSH: %+v", a)
	}
}

// Opening a store on a Redis that keeps 4 KiB stream nodes says so, with the setting to change.
func TestOpenAdvisesSmallStreamNodes(t *testing.T) {
	ctx := context.Background()
	probe := open(t)
	opened := func() string {
		var buf bytes.Buffer
		r, err := Open(ctx, Options{URL: redistest.URL(t), Namespace: redistest.Namespace(t)}, slog.New(slog.NewTextHandler(&buf, nil)))
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		return buf.String()
	}
	if out := opened(); strings.Contains(out, "stream-node-max-bytes") {
		t.Fatalf("advice on a Redis configured as recommended: %s", out)
	}
	if err := probe.rdb.ConfigSet(ctx, "stream-node-max-bytes", "4096").Err(); err != nil {
		t.Fatal(err)
	}
	defer probe.rdb.ConfigSet(ctx, "stream-node-max-bytes", "512")
	if out := opened(); !strings.Contains(out, "stream-node-max-bytes=4096") {
		t.Fatalf("no advice on a Redis with 4 KiB stream nodes: %q", out)
	}
}
