package dispatch

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
)

// TestHangupJobOfADeadRunnerIsDoneByAnother: a runner claims a hang-up and dies before doing
// it; once its lease runs out another runner does it, once, and Twilio's answer (the call
// resource, completed) is applied to the call as an event.
func TestHangupJobOfADeadRunnerIsDoneByAnother(t *testing.T) {
	st := openStore(t, redistest.Namespace(t))
	ctx := context.Background()
	var hangups atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if !strings.HasSuffix(r.URL.Path, "/Calls/CA00000000000000000000000000000001.json") || r.PostForm.Get("Status") != "completed" {
			http.NotFound(w, r)
			return
		}
		hangups.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"sid": "CA00000000000000000000000000000001", "status": "completed"})
	}))
	t.Cleanup(api.Close)
	reg, cfg := registryWith(t, st, twilioConfig(), api.URL)
	id := store.NewCallID()
	if _, err := st.Apply(ctx, call.Event{ID: "q", CallID: id, State: call.InProgress, Direction: call.Outbound,
		Carrier: cfg.ID, CarrierCallID: "CA00000000000000000000000000000001"}); err != nil {
		t.Fatal(err)
	}
	c, _ := st.Call(ctx, id)
	metrics := NewMetrics(nil)
	a := NewActions(ActionDeps{Store: st, Registry: reg, Instance: "alive", Poll: 20 * time.Millisecond, Lease: 5 * time.Second,
		Metrics: metrics})
	if err := a.Hangup(ctx, c, "api:admin"); err != nil {
		t.Fatal(err)
	}
	// The dead runner: it claimed the job with a short lease and never came back.
	if claimed, err := st.ClaimJobs(ctx, "dead", time.Second, 10); err != nil || len(claimed) != 1 {
		t.Fatalf("dead runner's claim = %v, %v", claimed, err)
	}
	runActions(t, a)
	redistest.Eventually(t, time.Second, "the backlog gauge counts the claimed job", func() bool { return metricValue(t, metrics.actionBacklog) == 1 })

	redistest.Eventually(t, 5*time.Second, "the hang-up is done by the live runner", func() bool {
		j, err := st.JobOf(ctx, store.JobID(store.JobHangup, id))
		return err == nil && j.State == "done"
	})
	if n := hangups.Load(); n != 1 {
		t.Fatalf("Twilio was asked to hang up %d times, want 1", n)
	}
	got, err := st.Call(ctx, id)
	if err != nil || got.State != call.Completed {
		t.Fatalf("call = %v, %v; want completed from Twilio's answer", got.State, err)
	}
	last := got.History[len(got.History)-1]
	if !strings.HasPrefix(last.EventID, "api:") || !strings.Contains(last.Detail, "api:admin") {
		t.Fatalf("last history entry = %+v; want the carrier's answer to our hang-up", last)
	}
	if n := metricValue(t, metrics.actions.WithLabelValues(cfg.ID, store.JobHangup, "done")); n != 1 {
		t.Fatalf("switchboard_carrier_actions_total{result=done} = %v, want 1", n)
	}
	redistest.Eventually(t, 3*time.Second, "the backlog gauge reads 0", func() bool { return metricValue(t, metrics.actionBacklog) == 0 })
}

func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue() + m.GetGauge().GetValue()
}

// TestActionsGiveUpAfterTheBound: a job whose carrier keeps failing is tried MaxAttempts
// times with backoff, then given up with its reason kept.
func TestActionsGiveUpAfterTheBound(t *testing.T) {
	st := openStore(t, redistest.Namespace(t))
	ctx := context.Background()
	var tries atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tries.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(api.Close)
	reg, cfg := registryWith(t, st, telnyxConfig(), api.URL)
	id := store.NewCallID()
	a := NewActions(ActionDeps{Store: st, Registry: reg, Instance: "a", Poll: 10 * time.Millisecond,
		Backoff: 5 * time.Millisecond, MaxAttempts: 3})
	if _, err := a.EnqueueJob(ctx, store.Job{ID: store.JobID(store.JobAnswer, id), Kind: store.JobAnswer, CallID: id,
		Carrier: cfg.ID, CarrierCallID: "v3:dead-carrier"}); err != nil {
		t.Fatal(err)
	}
	runActions(t, a)
	redistest.Eventually(t, 5*time.Second, "the job is given up", func() bool {
		j, err := st.JobOf(ctx, store.JobID(store.JobAnswer, id))
		return err == nil && j.State == "failed"
	})
	j, _ := st.JobOf(ctx, store.JobID(store.JobAnswer, id))
	if tries.Load() != 3 || j.Attempts != 3 || !strings.Contains(j.LastError, "502") {
		t.Fatalf("tries %d, job %+v; want 3 attempts and the 502 as the reason", tries.Load(), j)
	}
}

// TestRejectAndNotTaken: letting go of an inbound Telnyx call declines it (busy) while it
// was never answered and hangs it up once it was; an answer job whose call nobody can take
// declines it instead of answering.
func TestRejectAndNotTaken(t *testing.T) {
	st := openStore(t, redistest.Namespace(t))
	ctx := context.Background()
	sent := make(chan string, 16)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cmd struct {
			CommandID string `json:"command_id"`
			Cause     string `json:"cause"`
		}
		json.NewDecoder(r.Body).Decode(&cmd)
		sent <- r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:] + " " + cmd.CommandID + " " + cmd.Cause
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data":{"result":"ok"}}`))
	}))
	t.Cleanup(api.Close)
	reg, cfg := registryWith(t, st, telnyxConfig(), api.URL)
	a := NewActions(ActionDeps{Store: st, Registry: reg, Instance: "a", Poll: 10 * time.Millisecond,
		Inbound: PrepareFunc(func(context.Context, store.Job) (string, bool, error) { return "", false, nil })})
	runActions(t, a)

	inbound := func(ccid string, s call.State) call.Call {
		id := store.InboundCallID(cfg.ID, ccid)
		if _, err := st.Apply(ctx, call.Event{ID: "e-" + ccid, CallID: id, State: s, Direction: call.Inbound,
			Carrier: cfg.ID, CarrierCallID: ccid}); err != nil {
			t.Fatal(err)
		}
		c, _ := st.Call(ctx, id)
		return c
	}
	next := func() string {
		select {
		case s := <-sent:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("no command sent to Telnyx")
			return ""
		}
	}
	if err := a.Reject(ctx, inbound("v3:ringing", call.Initiated), "queue"); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "reject reject-v3:ringing USER_BUSY" {
		t.Fatalf("unanswered call let go with %q, want a busy reject", got)
	}
	if err := a.Reject(ctx, inbound("v3:answered", call.InProgress), "queue"); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "hangup hangup-v3:answered " {
		t.Fatalf("answered call let go with %q, want a hang-up", got)
	}
	c := inbound("v3:nobody", call.Initiated)
	if _, err := a.EnqueueJob(ctx, store.Job{ID: store.JobID(store.JobAnswer, c.ID), Kind: store.JobAnswer, CallID: c.ID,
		Carrier: cfg.ID, CarrierCallID: "v3:nobody"}); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "reject reject-v3:nobody USER_BUSY" {
		t.Fatalf("a call nobody can take got %q, want a busy reject", got)
	}
}

// TestAnswerOfAnEndedCall: an answer job whose call ended while it waited rings nobody and
// sends nothing; one whose call ends at Telnyx as it is answered (90018) is done, not failed.
func TestAnswerOfAnEndedCall(t *testing.T) {
	st := openStore(t, redistest.Namespace(t))
	ctx := context.Background()
	var answers atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answers.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		w.Write([]byte(`{"errors":[{"code":"90018","title":"Call has already ended"}]}`))
	}))
	t.Cleanup(api.Close)
	reg, cfg := registryWith(t, st, telnyxConfig(), api.URL)
	var offered atomic.Int64
	a := NewActions(ActionDeps{Store: st, Registry: reg, Instance: "a", Poll: 10 * time.Millisecond,
		Inbound: PrepareFunc(func(context.Context, store.Job) (string, bool, error) { offered.Add(1); return "", true, nil })})
	runActions(t, a)

	answer := func(ccid string, s call.State) string {
		id := store.InboundCallID(cfg.ID, ccid)
		if _, err := st.Apply(ctx, call.Event{ID: "e-" + ccid, CallID: id, State: s, Direction: call.Inbound,
			Carrier: cfg.ID, CarrierCallID: ccid}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.EnqueueJob(ctx, store.Job{ID: store.JobID(store.JobAnswer, id), Kind: store.JobAnswer, CallID: id,
			Carrier: cfg.ID, CarrierCallID: ccid}); err != nil {
			t.Fatal(err)
		}
		redistest.Eventually(t, 5*time.Second, "the answer job done", func() bool {
			j, err := st.JobOf(ctx, store.JobID(store.JobAnswer, id))
			return err == nil && j.State == "done"
		})
		return id
	}
	answer("v3:gone", call.Canceled)
	if offered.Load() != 0 || answers.Load() != 0 {
		t.Fatalf("an ended call was offered %d times and answered %d times", offered.Load(), answers.Load())
	}
	answer("v3:going", call.Initiated)
	if offered.Load() != 1 || answers.Load() != 1 {
		t.Fatalf("offered %d, answered %d; want one of each", offered.Load(), answers.Load())
	}
}

// registryWith is a registry holding cfg, its REST API at apiURL (a scripted carrier).
func registryWith(t *testing.T, st *carrierdb.Store, cfg carrier.Config, apiURL string) (*carrier.Registry, carrier.Config) {
	t.Helper()
	reg := carrier.NewRegistry(st, nil, slog.New(slog.DiscardHandler))
	cfg.APIURL = apiURL
	if _, err := reg.Put(context.Background(), cfg, "test"); err != nil {
		t.Fatal(err)
	}
	return reg, cfg
}
