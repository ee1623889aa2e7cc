package main

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
)

// mediaInstance plays the media WebSocket of one instance: it accepts every stream and keeps
// the path and query each arrived on and its start message's custom parameters.
type mediaInstance struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []string // request URI, then "|" and sb_call from a Twilio start when there is one
}

func newMediaInstance(t *testing.T) *mediaInstance {
	m := &mediaInstance{}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		seen := r.URL.RequestURI()
		m.mu.Lock()
		i := len(m.got)
		m.got = append(m.got, seen)
		m.mu.Unlock()
		for {
			var msg struct {
				Event string `json:"event"`
				Start struct {
					CustomParameters map[string]string `json:"customParameters"`
				} `json:"start"`
			}
			if conn.ReadJSON(&msg) != nil {
				return
			}
			if msg.Event == "start" && msg.Start.CustomParameters != nil {
				m.mu.Lock()
				m.got[i] = seen + "|" + msg.Start.CustomParameters["sb_call"]
				m.mu.Unlock()
			}
		}
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *mediaInstance) streams() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.got...)
}

// testStreamURLs builds stream URLs as the webhooks server does, without a token.
type testStreamURLs struct{}

func (testStreamURLs) TwilioStreamURLAt(base, carrier, callID string) string {
	return "ws" + strings.TrimPrefix(base, "http") + "/webhooks/" + carrier + "/media/" + callID
}

func (testStreamURLs) TelnyxStreamURLAt(base, carrier, callID string) string {
	return "ws" + strings.TrimPrefix(base, "http") + "/webhooks/" + carrier + "/media?sb_call=" + callID
}

// repointRig is the simulator as two carriers (simtw, simtx) in a registry on real Redis, no
// instance running, and the agentCalls whose Repoint is under test.
type repointRig struct {
	t     *testing.T
	st    *store.Redis
	sim   *sim.Carrier
	simTX *carrier.TelnyxClient
	calls *agentCalls
	// voice answers the simulator's Twilio voice webhook with this TwiML.
	voice string
}

func newRepointRig(t *testing.T) *repointRig {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st := storetest.OpenTest(t, redistest.Namespace(t))
	rig := &repointRig{t: t, st: st}
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/voice") {
			w.Header().Set("Content-Type", "text/xml")
			io.WriteString(w, rig.voice)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hooks.Close)
	c, err := sim.New(sim.Config{Ring: 20 * time.Millisecond, TwilioVoiceURL: hooks.URL + "/voice",
		TwilioStatusURL: hooks.URL + "/status", TelnyxWebhookURL: hooks.URL + "/events"})
	if err != nil {
		t.Fatal(err)
	}
	simSrv := httptest.NewServer(c.Handler())
	t.Cleanup(func() {
		c.Close()
		simSrv.Close()
	})
	rig.sim = c
	reg := carrier.NewRegistry(carrierdb.New(st), nil, log)
	for _, cfg := range []carrier.Config{
		{ID: "simtw", Kind: carrier.Twilio, APIURL: simSrv.URL, AccountSID: c.AccountSID(), AuthToken: c.AuthToken(),
			From: "+15005550006", Priority: 1, Enabled: true},
		{ID: "simtx", Kind: carrier.Telnyx, APIURL: simSrv.URL, APIKey: c.TelnyxAPIKey(), ConnectionID: c.ConnectionID(),
			PublicKey: base64.StdEncoding.EncodeToString(c.PublicKey()), From: "+15005550007", Priority: 2, Enabled: true},
	} {
		if _, err := reg.Put(ctx, cfg, "test"); err != nil {
			t.Fatal(err)
		}
	}
	client, _ := reg.Client("simtx")
	rig.simTX = client.(*carrier.TelnyxClient)
	rig.calls = &agentCalls{st: st, reg: reg, log: log, streams: testStreamURLs{}, repointBackoff: 50 * time.Millisecond}
	return rig
}

// record stores the inbound call as its voice webhook would: in progress, linked to the
// carrier's call.
func (r *repointRig) record(carrierID, carrierCallID string) string {
	r.t.Helper()
	id := store.InboundCallID(carrierID, carrierCallID)
	e := call.Event{ID: "test:" + carrierCallID, CallID: id, Carrier: carrierID, CarrierCallID: carrierCallID,
		State: call.InProgress, Direction: call.Inbound, From: "+14155550100", To: "+14155550199",
		At: time.Now(), Source: call.SourceCallback}
	if _, err := r.st.Apply(context.Background(), e); err != nil {
		r.t.Fatal(err)
	}
	if err := r.st.Link(context.Background(), id, carrierID, carrierCallID); err != nil {
		r.t.Fatal(err)
	}
	return id
}

func (r *repointRig) report(sid, what string, cond func(sim.Report) bool) sim.Report {
	r.t.Helper()
	return waitReport(r.t, r.sim, sid, what, cond)
}

// forced reports whether the call's reconciliation was brought forward: its check is due now
// and will ask the carrier.
func (r *repointRig) forced(id string) bool {
	r.t.Helper()
	claims, err := r.st.ClaimReconcile(context.Background(), time.Now(), time.Minute, 100)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, c := range claims {
		if c.CallID == id && c.Forced {
			return true
		}
	}
	return false
}

// TestRepointTwilio: Repoint sends a live Twilio call the TwiML of its voice answer with the
// stream at the new instance; the call keeps going there. Once the call has ended, Repoint is
// refused and the call's reconciliation brought forward.
func TestRepointTwilio(t *testing.T) {
	rig := newRepointRig(t)
	first, second := newMediaInstance(t), newMediaInstance(t)
	rig.voice = `<Response><Connect><Stream url="` + testStreamURLs{}.TwilioStreamURLAt(first.srv.URL, "simtw", "x") + `"/></Connect><Pause length="20"/><Hangup/></Response>`
	sid, err := rig.sim.Inbound(sim.InboundRequest{Kind: sim.Twilio})
	if err != nil {
		t.Fatal(err)
	}
	id := rig.record("simtw", sid)
	rig.report(sid, "the first stream", func(r sim.Report) bool { return r.StreamsOpened == 1 })

	began := time.Now()
	if err := rig.calls.Repoint(t.Context(), id, second.srv.URL); err != nil {
		t.Fatal(err)
	}
	rep := rig.report(sid, "the second stream", func(r sim.Report) bool { return r.StreamsOpened == 2 && r.StreamsOpen == 1 })
	t.Logf("re-pointed: the new stream open %v after Repoint began", time.Since(began).Round(time.Millisecond))
	if want := "/webhooks/simtw/media/" + id + "|" + id; !waitStreams(t, second, want) {
		t.Errorf("the new instance got streams %v, want %s", second.streams(), want)
	}
	if rep.Status != "in-progress" {
		t.Errorf("call %s after the re-point", rep.Status)
	}

	if err := rig.sim.Hangup(sid); err != nil {
		t.Fatal(err)
	}
	rig.report(sid, "the end", func(r sim.Report) bool { return r.Status == "completed" })
	err = rig.calls.Repoint(t.Context(), id, first.srv.URL)
	if !errors.Is(err, errRepointRefused) || !strings.Contains(err.Error(), "21220") {
		t.Fatalf("re-point of an ended call: %v", err)
	}
	if !rig.forced(id) {
		t.Error("the refused call's reconciliation was not brought forward")
	}
}

// TestRepointTelnyx: Repoint starts a new stream on a live Telnyx call at the new instance;
// once the call has ended the carrier's 90018 refuses it.
func TestRepointTelnyx(t *testing.T) {
	rig := newRepointRig(t)
	first, second := newMediaInstance(t), newMediaInstance(t)
	ccid, err := rig.sim.Inbound(sim.InboundRequest{Kind: sim.Telnyx})
	if err != nil {
		t.Fatal(err)
	}
	id := rig.record("simtx", ccid)
	if r := rig.simTX.Answer(t.Context(), ccid, testStreamURLs{}.TelnyxStreamURLAt(first.srv.URL, "simtx", id), ""); r.Outcome != carrier.Accepted {
		t.Fatal(r)
	}
	rig.report(ccid, "the first stream", func(r sim.Report) bool { return r.StreamsOpened == 1 })

	began := time.Now()
	if err := rig.calls.Repoint(t.Context(), id, second.srv.URL); err != nil {
		t.Fatal(err)
	}
	rig.report(ccid, "the second stream", func(r sim.Report) bool { return r.StreamsOpened == 2 && r.StreamsOpen == 1 })
	t.Logf("re-pointed: the new stream open %v after Repoint began", time.Since(began).Round(time.Millisecond))
	if want := "/webhooks/simtx/media?sb_call=" + id; !waitStreams(t, second, want) {
		t.Errorf("the new instance got streams %v, want %s", second.streams(), want)
	}

	if err := rig.sim.Hangup(ccid); err != nil {
		t.Fatal(err)
	}
	rig.report(ccid, "the end", func(r sim.Report) bool { return !r.EndedAt.IsZero() })
	err = rig.calls.Repoint(t.Context(), id, first.srv.URL)
	if !errors.Is(err, errRepointRefused) || !strings.Contains(err.Error(), "90018") {
		t.Fatalf("re-point of an ended call: %v", err)
	}
	if !rig.forced(id) {
		t.Error("the refused call's reconciliation was not brought forward")
	}
}

// TestRepointRetriesThenGivesUp: a carrier that answers 503 is tried again within the budget,
// then the call is left to the reconciler.
func TestRepointRetriesThenGivesUp(t *testing.T) {
	rig := newRepointRig(t)
	second := newMediaInstance(t)
	ccid, err := rig.sim.Inbound(sim.InboundRequest{Kind: sim.Telnyx})
	if err != nil {
		t.Fatal(err)
	}
	id := rig.record("simtx", ccid)
	if r := rig.simTX.Answer(t.Context(), ccid, "", ""); r.Outcome != carrier.Accepted {
		t.Fatal(r)
	}
	if err := rig.sim.SetFaults(sim.Faults{RESTErrorRate: 1, RESTErrorStatus: http.StatusServiceUnavailable}); err != nil {
		t.Fatal(err)
	}
	err = rig.calls.Repoint(t.Context(), id, second.srv.URL)
	if !errors.Is(err, errRepointRefused) {
		t.Fatalf("re-point against a failing API: %v", err)
	}
	if n := rig.sim.Stats().RESTErrorsInjected; n < 3 {
		t.Errorf("%d attempts, want a few retries", n)
	}
	if !rig.forced(id) {
		t.Error("the call's reconciliation was not brought forward")
	}
	if err := rig.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := rig.calls.Repoint(t.Context(), id, second.srv.URL); err != nil {
		t.Fatalf("re-point once the API is back: %v", err)
	}
}

func waitStreams(t *testing.T, m *mediaInstance, want string) bool {
	t.Helper()
	ok := false
	redistest.Eventually(t, 10*time.Second, "the stream at the new instance", func() bool {
		for _, s := range m.streams() {
			if s == want {
				ok = true
			}
		}
		return ok
	})
	return ok
}
