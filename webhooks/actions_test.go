package webhooks

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
)

// telnyxAPI is a Telnyx Call Control API that records every command it is sent and fails
// the first failFirst of them with 503.
type telnyxAPI struct {
	mu        sync.Mutex
	commands  []string // "action command_id status"
	failFirst int
}

func (a *telnyxAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var cmd struct {
		CommandID string `json:"command_id"`
	}
	json.NewDecoder(r.Body).Decode(&cmd)
	action := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	a.mu.Lock()
	status := http.StatusOK
	if len(a.commands) < a.failFirst {
		status = http.StatusServiceUnavailable
	}
	a.commands = append(a.commands, action+" "+cmd.CommandID+" "+http.StatusText(status))
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write([]byte(`{"data":{"result":"ok"}}`))
}

func (a *telnyxAPI) sent() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.commands...)
}

// TestDuplicateCallInitiatedAnswersOnce: Telnyx delivers call.initiated three times (a retry
// with the same event id, and a replay); the first answer meets a 503. The call is answered
// exactly once, and the retry after the 503 carries the first attempt's command_id.
func TestDuplicateCallInitiatedAnswersOnce(t *testing.T) {
	api := &telnyxAPI{failFirst: 1}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)

	var runner *dispatch.Actions
	h := newHarness(t, redistest.URL(t), func(d *Deps) {
		d.Actions = jobQueueFunc(func(ctx context.Context, j store.Job) (bool, error) { return runner.EnqueueJob(ctx, j) })
	})
	reg := carrier.NewRegistry(carrierdb.New(h.st), nil, slog.New(slog.DiscardHandler))
	if _, err := reg.Put(context.Background(), carrier.Config{ID: "tx", Kind: carrier.Telnyx, APIURL: apiSrv.URL,
		APIKey: "KEY-test", ConnectionID: "1494404757140276705", PublicKey: "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=",
		From: "+15550002222", Enabled: true}, "test"); err != nil {
		t.Fatal(err)
	}
	runner = dispatch.NewActions(dispatch.ActionDeps{Store: carrierdb.New(h.st), Registry: reg, Inbound: dispatch.PrepareFunc(h.srv.PrepareAnswer),
		Instance: "a", Poll: 20 * time.Millisecond, Backoff: 20 * time.Millisecond})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runner.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	ccid := "v3:" + strings.Repeat("c", 20)
	for _, id := range []string{"ev-1", "ev-1", "ev-1-replayed"} {
		if r := h.telnyxPost("/webhooks/tx/events", signedTelnyxFixture(id, "call.initiated", ccid, "incoming", nil), time.Now()); r.StatusCode != 204 {
			t.Fatalf("call.initiated %s: %d", id, r.StatusCode)
		}
	}
	jobID := store.JobID(store.JobAnswer, store.InboundCallID("tx", ccid))
	redistest.Eventually(t, 5*time.Second, "the answer job is done", func() bool {
		j, err := h.st.JobOf(context.Background(), jobID)
		return err == nil && j.State == "done"
	})
	// Once more after it is done: still nothing new owed.
	if r := h.telnyxPost("/webhooks/tx/events", signedTelnyxFixture("ev-1", "call.initiated", ccid, "incoming", nil), time.Now()); r.StatusCode != 204 {
		t.Fatalf("late replay: %d", r.StatusCode)
	}
	if n, _ := h.st.JobBacklog(context.Background()); n != 0 {
		t.Fatalf("backlog %d after a replay of a done job", n)
	}
	want := []string{"answer answer-" + ccid + " Service Unavailable", "answer answer-" + ccid + " OK"}
	if got := api.sent(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("Telnyx was sent %q, want %q", got, want)
	}
}

type jobQueueFunc func(ctx context.Context, j store.Job) (bool, error)

func (f jobQueueFunc) EnqueueJob(ctx context.Context, j store.Job) (bool, error) { return f(ctx, j) }
