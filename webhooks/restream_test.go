package webhooks

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/dispatch"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
)

// locateFunc plays the media locator: where a call's media goes.
type locateFunc func(callID string) string

func (f locateFunc) MediaBase(_ context.Context, callID string) (string, error) {
	return f(callID), nil
}

// TestStreamingFailedStartsTheStreamWhereTheMediaGoes: the documented streaming.failed, for
// a live outbound call whose media now goes to another instance (b.test), is acknowledged
// once a restream job is stored; the job starts a stream to b.test through Call Control. A
// retry of the webhook starts nothing more; a stream that failed where the media goes, or
// one of a call that has ended, is not started again.
func TestStreamingFailedStartsTheStreamWhereTheMediaGoes(t *testing.T) {
	api := &telnyxAPI{}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)
	var runner *dispatch.Actions
	h := newHarness(t, redistest.URL(t), func(d *Deps) {
		d.Actions = jobQueueFunc(func(ctx context.Context, j store.Job) (bool, error) { return runner.EnqueueJob(ctx, j) })
		d.Locate = locateFunc(func(string) string { return "http://b.test" })
	})
	reg := carrier.NewRegistry(carrierdb.New(h.st), nil, slog.New(slog.DiscardHandler))
	if _, err := reg.Put(context.Background(), carrier.Config{ID: "tx", Kind: carrier.Telnyx, APIURL: apiSrv.URL,
		APIKey: "KEY-test", ConnectionID: "1494404757140276705", PublicKey: "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=",
		From: "+15550002222", Enabled: true}, "test"); err != nil {
		t.Fatal(err)
	}
	runner = dispatch.NewActions(dispatch.ActionDeps{Store: carrierdb.New(h.st), Registry: reg,
		Instance: "a", Poll: 20 * time.Millisecond, Backoff: 20 * time.Millisecond})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { runner.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	raw := fixture(t, "telnyx/streaming-failed.json")
	e, err := ParseTelnyxEvent("tx", raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := telnyxFailedStreamURL(raw); got != "wss://www.example.com/websocket" {
		t.Fatalf("the failed stream's URL read as %q", got)
	}
	// live places an outbound call in state st on tx, linked to call_control_id ccid.
	live := func(st call.State, ccid string) string {
		t.Helper()
		id := store.NewCallID()
		if _, err := h.st.Apply(ctx, call.Event{ID: "placed", CallID: id, State: st, Direction: call.Outbound}); err != nil {
			t.Fatal(err)
		}
		if err := h.st.ClaimAttempt(ctx, id, "tx", 1); err != nil {
			t.Fatal(err)
		}
		if err := h.st.Link(ctx, id, "tx", ccid); err != nil {
			t.Fatal(err)
		}
		return id
	}
	post := func(body []byte) {
		t.Helper()
		if r := h.telnyxPost("/webhooks/tx/events", body, time.Now()); r.StatusCode != 204 {
			t.Fatalf("streaming.failed: %d", r.StatusCode)
		}
	}

	id := live(call.InProgress, e.CarrierCallID)
	post(raw)
	post(raw) // Telnyx retries it
	jobID := store.JobID(store.JobRestream, id+":"+e.ID)
	redistest.Eventually(t, 5*time.Second, "the restream job is done", func() bool {
		j, err := h.st.JobOf(ctx, jobID)
		return err == nil && j.State == "done"
	})
	j, _ := h.st.JobOf(ctx, jobID)
	if want := h.srv.TelnyxStreamURLAt("http://b.test", "tx", id); j.StreamURL != want || j.CarrierCallID != e.CarrierCallID {
		t.Fatalf("job %+v: want a stream to %s for %s", j.Job, want, e.CarrierCallID)
	}
	if sent := api.sent(); len(sent) != 1 || !strings.HasPrefix(sent[0], "streaming_start ") {
		t.Fatalf("Telnyx was sent %q, want one streaming_start", sent)
	}

	// A stream that failed where the media goes now: nothing to start again.
	here := bytes.Replace(raw, []byte("wss://www.example.com/websocket"), []byte(h.srv.TelnyxStreamURLAt("http://b.test", "tx", id)), 1)
	here = bytes.Replace(here, []byte("25dc3731"), []byte("35dc3731"), 1) // another event
	post(here)
	// A call that has ended: nothing either.
	endedID := live(call.Completed, "v3:ended-call")
	ended := bytes.ReplaceAll(raw, []byte(e.CarrierCallID), []byte("v3:ended-call"))
	ended = bytes.Replace(ended, []byte("25dc3731"), []byte("45dc3731"), 1)
	post(ended)
	for _, owed := range []string{
		store.JobID(store.JobRestream, id+":tx:35dc3731-e51e-4927-a50d-a61cc25984b1"),
		store.JobID(store.JobRestream, endedID+":tx:45dc3731-e51e-4927-a50d-a61cc25984b1"),
	} {
		if j, err := h.st.JobOf(ctx, owed); err == nil {
			t.Errorf("job %+v owed, want none", j.Job)
		}
	}
	if c, err := h.st.Call(ctx, endedID); err != nil || len(c.History) < 2 || c.History[len(c.History)-1].Detail != telnyxStreamingFailed {
		t.Fatalf("the ended call's streaming.failed not stored: %+v, %v", c, err)
	}
	if sent := api.sent(); len(sent) != 1 {
		t.Fatalf("Telnyx was sent %q, want the one streaming_start", sent)
	}
}
