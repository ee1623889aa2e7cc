package carrier

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

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
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
	reg := NewRegistry(st, nil, slog.New(slog.DiscardHandler))
	cfg := twilioConfig()
	cfg.APIURL = api.URL
	if _, err := reg.Put(ctx, cfg, "test"); err != nil {
		t.Fatal(err)
	}
	id := store.NewCallID()
	if _, err := st.Apply(ctx, call.Event{ID: "q", CallID: id, State: call.InProgress, Direction: call.Outbound,
		Carrier: cfg.ID, CarrierCallID: "CA00000000000000000000000000000001"}); err != nil {
		t.Fatal(err)
	}
	c, _ := st.Call(ctx, id)
	a := NewActions(ActionDeps{Store: st, Registry: reg, Instance: "alive", Poll: 20 * time.Millisecond, Lease: 5 * time.Second})
	if err := a.Hangup(ctx, c, "api:admin"); err != nil {
		t.Fatal(err)
	}
	// The dead runner: it claimed the job with a short lease and never came back.
	if claimed, err := st.ClaimJobs(ctx, "dead", 300*time.Millisecond, 10); err != nil || len(claimed) != 1 {
		t.Fatalf("dead runner's claim = %v, %v", claimed, err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	eventually(t, 5*time.Second, "the hang-up is done by the live runner", func() bool {
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
	reg := NewRegistry(st, nil, slog.New(slog.DiscardHandler))
	cfg := telnyxConfig()
	cfg.APIURL = api.URL
	if _, err := reg.Put(ctx, cfg, "test"); err != nil {
		t.Fatal(err)
	}
	id := store.NewCallID()
	a := NewActions(ActionDeps{Store: st, Registry: reg, Instance: "a", Poll: 10 * time.Millisecond,
		Backoff: 5 * time.Millisecond, MaxAttempts: 3})
	if _, err := a.EnqueueJob(ctx, store.Job{ID: store.JobID(store.JobAnswer, id), Kind: store.JobAnswer, CallID: id,
		Carrier: cfg.ID, CarrierCallID: "v3:dead-carrier"}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { a.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	eventually(t, 5*time.Second, "the job is given up", func() bool {
		j, err := st.JobOf(ctx, store.JobID(store.JobAnswer, id))
		return err == nil && j.State == "failed"
	})
	j, _ := st.JobOf(ctx, store.JobID(store.JobAnswer, id))
	if tries.Load() != 3 || j.Attempts != 3 || !strings.Contains(j.LastError, "502") {
		t.Fatalf("tries %d, job %+v; want 3 attempts and the 502 as the reason", tries.Load(), j)
	}
}
