package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
)

// deployment is one or more Switchboard instances sharing a Redis namespace, with the carrier
// simulator configured as their only carrier (id simtw, Twilio kind).
type deployment struct {
	t         *testing.T
	ns        string // the deployment's Redis namespace, for instances started later
	st        *store.Redis
	instances []*server
	sim       *sim.Carrier
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newDeployment starts n instances with env; the simulator sends its inbound calls to the
// instance numbered webhooks.
func newDeployment(t *testing.T, n, webhooks int, env map[string]string, tweaks ...func(*sim.Config)) *deployment {
	t.Helper()
	ns := redistest.Namespace(t)
	st := storetest.Open(t, redistest.URL(t), ns)

	// The simulator must know Switchboard's URL and Switchboard the simulator's: serve a
	// handler that is filled in once both exist.
	var handler atomic.Pointer[http.Handler]
	simSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := handler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "simulator not ready", http.StatusServiceUnavailable)
	}))
	t.Cleanup(simSrv.Close)
	sid, token := "AC"+randomHex(16), randomHex(16)
	reg := carrier.NewRegistry(carrierdb.New(st), nil, slog.New(slog.DiscardHandler))
	if _, err := reg.Put(context.Background(), carrier.Config{ID: "simtw", Kind: carrier.Twilio, APIURL: simSrv.URL,
		AccountSID: sid, AuthToken: token, From: "+15005550006", Priority: 1, Enabled: true}, "test"); err != nil {
		t.Fatal(err)
	}
	// The same simulator is also a Telnyx-kind carrier, simtx, for inbound Telnyx calls.
	txPub, txKey, _ := ed25519.GenerateKey(rand.Reader)
	txAPIKey, txConnection := "KEY"+randomHex(8), "1494404757140276705"
	if _, err := reg.Put(context.Background(), carrier.Config{ID: "simtx", Kind: carrier.Telnyx, APIURL: simSrv.URL,
		APIKey: txAPIKey, ConnectionID: txConnection, PublicKey: base64.StdEncoding.EncodeToString(txPub),
		From: "+15005550007", Priority: 2, Enabled: true}, "test"); err != nil {
		t.Fatal(err)
	}

	vars := map[string]string{"SWITCHBOARD_REDIS_NAMESPACE": ns}
	for k, v := range env {
		vars[k] = v
	}
	d := &deployment{t: t, ns: ns, st: st}
	for range n {
		d.instances = append(d.instances, start(t, vars))
	}
	base := d.instances[webhooks].base
	cfg := sim.Config{AccountSID: sid, AuthToken: token, Ring: 200 * time.Millisecond,
		TwilioVoiceURL: base + "/webhooks/simtw/voice", TwilioStatusURL: base + "/webhooks/simtw/status",
		TelnyxAPIKey: txAPIKey, ConnectionID: txConnection, TelnyxPrivateKey: txKey, TelnyxWebhookURL: base + "/webhooks/simtx/events"}
	for _, f := range tweaks {
		f(&cfg)
	}
	c, err := sim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Handler()
	handler.Store(&h)
	// Registered after the instances' cleanups, so it runs first: calls end before the
	// instances stop.
	t.Cleanup(func() { c.Close() })
	d.sim = c
	return d
}

// request sends a JSON request with a bearer token and decodes the answer into out.
func request(t *testing.T, method, url, token string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	resp, raw := send(t, method, url, token, r)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode
}

// createAgent creates an agent through the admin API and returns its token.
func createAgent(t *testing.T, base, id string) string {
	t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	if code := request(t, http.MethodPut, base+"/api/admin/agents/"+id, adminToken, map[string]string{"name": "Agent " + id}, &out); code != http.StatusCreated || out.Token == "" {
		t.Fatalf("create agent %s: %d", id, code)
	}
	return out.Token
}

func softphone(t *testing.T, base, token string) *agentsim.SimSoftphone {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := agentsim.DialSoftphone(ctx, base, token, agentsim.SimAgentOptions{ToneHz: 440, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.Agent.WaitConnected(ctx); err != nil {
		t.Fatalf("softphone audio: %v", err)
	}
	return p
}

func expectMessage(t *testing.T, p *agentsim.SimSoftphone, what string, match func(agentsim.SoftphoneMessage) bool) agentsim.SoftphoneMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := p.Expect(ctx, match)
	if err != nil {
		var seen []string
		for _, m := range p.Messages() {
			if m.Type != "candidate" && m.Type != "pong" && m.Type != "answer" {
				seen = append(seen, string(m.Raw))
			}
		}
		t.Fatalf("waiting for %s: %v; got %s", what, err, strings.Join(seen, " "))
	}
	return m
}

// report waits until cond holds of the simulator's report on its call sid, and returns it.
func (d *deployment) report(sid string, what string, cond func(sim.Report) bool) sim.Report {
	d.t.Helper()
	return waitReport(d.t, d.sim, sid, what, cond)
}

// waitReport waits up to 10 s until cond holds of carrier c's report on its call sid (what
// names the wait when it fails), and returns that report.
func waitReport(t *testing.T, c *sim.Carrier, sid, what string, cond func(sim.Report) bool) sim.Report {
	t.Helper()
	var r sim.Report
	redistest.Eventually(t, 10*time.Second, what, func() bool {
		var err error
		r, err = c.CallReport(sid)
		return err == nil && cond(r)
	})
	return r
}

// placeAnswered places a call to a test number through the API of the instance at base, as
// the admin, and waits until the carrier has answered it.
func placeAnswered(t *testing.T, base string) call.Call {
	t.Helper()
	var placed call.Call
	if code := request(t, http.MethodPost, base+"/api/calls", adminToken, map[string]string{"to": "+15551230000"}, &placed); code != http.StatusCreated {
		t.Fatalf("place: %d", code)
	}
	var got call.Call
	redistest.Eventually(t, 10*time.Second, "the call answered", func() bool {
		return request(t, http.MethodGet, base+"/api/calls/"+placed.ID, adminToken, nil, &got) == 200 && got.State == call.InProgress
	})
	return placed
}

func (d *deployment) simCall(direction string) string {
	d.t.Helper()
	var sid string
	redistest.Eventually(d.t, 10*time.Second, "the simulator's call", func() bool {
		for _, r := range d.sim.Calls() {
			if r.Direction == direction {
				sid = r.SID
				return true
			}
		}
		return false
	})
	return sid
}

// makePrimary puts carrier id first (the other simulated carrier is moved behind it) and
// waits until every instance places calls through it.
func (d *deployment) makePrimary(id string) {
	d.t.Helper()
	ctx := context.Background()
	reg := carrier.NewRegistry(carrierdb.New(d.st), nil, slog.New(slog.DiscardHandler))
	if err := reg.Load(ctx); err != nil {
		d.t.Fatal(err)
	}
	for _, cfg := range reg.All() {
		if cfg.ID != id {
			cfg.Priority = 10
			if _, err := reg.Put(ctx, cfg, "test"); err != nil {
				d.t.Fatal(err)
			}
		}
	}
	for _, in := range d.instances {
		redistest.Eventually(d.t, 5*time.Second, id+" first on "+in.base, func() bool {
			var list struct {
				Carriers []struct{ ID string }
			}
			code := request(d.t, http.MethodGet, in.base+"/api/admin/carriers", adminToken, nil, &list)
			return code == http.StatusOK && len(list.Carriers) > 0 && list.Carriers[0].ID == id
		})
	}
}

func TestAgentsAdminAPI(t *testing.T) {
	ns := redistest.Namespace(t)
	s := start(t, map[string]string{"SWITCHBOARD_REDIS_NAMESPACE": ns})
	token := createAgent(t, s.base, "ann")
	if !strings.HasPrefix(token, "ann.") {
		t.Fatalf("token %q", token)
	}
	var out map[string]any
	if code := request(t, http.MethodPut, s.base+"/api/admin/agents/ann", adminToken, map[string]string{"name": "Ann B."}, &out); code != http.StatusOK || out["token"] != nil {
		t.Fatalf("rename: %d %v", code, out)
	}
	if code := request(t, http.MethodPut, s.base+"/api/admin/agents/ann", adminToken, map[string]any{"name": "Ann B.", "rotate_token": true}, &out); code != http.StatusOK || out["token"] == nil || out["token"] == token {
		t.Fatalf("rotate: %d %v", code, out)
	}
	fresh := out["token"].(string)
	for _, c := range []struct {
		url, token string
		body       any
		want       int
	}{
		{"/api/admin/agents/Not%20Valid", adminToken, map[string]string{"name": "x"}, http.StatusBadRequest},
		{"/api/admin/agents/bob", "", map[string]string{"name": "x"}, http.StatusUnauthorized},
		{"/api/admin/agents/bob", fresh, map[string]string{"name": "x"}, http.StatusForbidden},    // an agent is not an admin
		{"/api/admin/agents/bob", adminToken, map[string]any{"nmae": "x"}, http.StatusBadRequest}, //nolint:misspell // an unknown field is the point
	} {
		if code := request(t, http.MethodPut, s.base+c.url, c.token, c.body, nil); code != c.want {
			t.Errorf("PUT %s: %d, want %d", c.url, code, c.want)
		}
	}
	var list struct {
		Agents []struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			Presence struct {
				State string `json:"state"`
			} `json:"presence"`
		} `json:"agents"`
	}
	if code := request(t, http.MethodGet, s.base+"/api/admin/agents", adminToken, nil, &list); code != 200 || len(list.Agents) != 1 ||
		list.Agents[0].Name != "Ann B." || list.Agents[0].Presence.State != "offline" {
		t.Fatalf("list: %d %+v", code, list)
	}
	softphone(t, s.base, fresh)
	request(t, http.MethodGet, s.base+"/api/admin/agents", adminToken, nil, &list)
	if list.Agents[0].Presence.State != "available" {
		t.Fatalf("signed-in agent: %+v", list)
	}
	// The old token no longer signs in.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := agentsim.DialSoftphone(ctx, s.base, token, agentsim.SimAgentOptions{LoopbackOnly: true}); err == nil {
		t.Fatal("a rotated-out token signed in")
	}
	st := storetest.Open(t, redistest.URL(t), ns)
	audit, err := st.AuditLog(ctx, 10)
	if err != nil || len(audit) != 3 || audit[0].Action != "agent.put" || audit[0].Target != "ann" ||
		!strings.Contains(audit[0].Detail, "token rotated") || strings.Contains(audit[0].Detail, fresh) {
		t.Fatalf("audit log: %+v %v", audit, err)
	}
}

// TestSoftphoneCallsThroughTheSimulator: an agent places a call from its softphone through
// the simulated carrier; audio crosses the bridge both ways; the agent hangs up; the agent's
// token places a call through the API too, and reads only its own calls.
func TestSoftphoneCallsThroughTheSimulator(t *testing.T) {
	d := newDeployment(t, 1, 0, map[string]string{"SWITCHBOARD_WRAP_UP": "200ms"})
	base := d.instances[0].base
	annToken := createAgent(t, base, "ann")
	bobToken := createAgent(t, base, "bob")
	ann := softphone(t, base, annToken)

	ann.Send(map[string]any{"type": "dial", "to": "+15551230000"})
	first := expectMessage(t, ann, "the call", func(m agentsim.SoftphoneMessage) bool { return m.Type == "call" })
	id := first.CallID
	expectMessage(t, ann, "ringing", func(m agentsim.SoftphoneMessage) bool { return m.Type == "call" && m.State == "ringing" })
	expectMessage(t, ann, "answered", func(m agentsim.SoftphoneMessage) bool { return m.Type == "call" && m.State == "in-progress" })
	sid := d.simCall("outbound")
	r := d.report(sid, "the simulator hearing the agent's 440 Hz", func(r sim.Report) bool { return r.BytesReceived > 16000 && r.DominantHz == 440 })
	t.Logf("simulator heard %v Hz at power %.3f", r.DominantHz, r.DominantPower)
	ann.Agent.ResetRecording()
	redistest.Eventually(t, 10*time.Second, "the agent hearing the simulator", func() bool { return len(ann.Agent.Recording()) >= 8000 })
	if p := ann.Agent.DominantPower(1000); p < 0.05 {
		t.Errorf("the agent does not hear the simulator's 1000 Hz: %.3f", p)
	}
	ann.Send(map[string]any{"type": "hangup", "call_id": id})
	expectMessage(t, ann, "the end", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ended" && m.CallID == id })
	d.report(sid, "the simulator's call completed", func(r sim.Report) bool { return r.Status == "completed" })
	expectMessage(t, ann, "available after wrap-up", func(m agentsim.SoftphoneMessage) bool { return m.Type == "availability" && m.State == "available" })

	// The agent's token places a call for the agent through the API: the softphone shows it.
	var placed call.Call
	if code := request(t, http.MethodPost, base+"/api/calls", annToken, map[string]string{"to": "+15551230000"}, &placed); code != http.StatusCreated {
		t.Fatalf("POST /api/calls as the agent: %d %+v", code, placed)
	}
	if placed.Agent != "ann" || placed.Direction != call.Outbound || placed.Carrier != "simtw" {
		t.Fatalf("placed call: %+v", placed)
	}
	expectMessage(t, ann, "the API call in the softphone", func(m agentsim.SoftphoneMessage) bool { return m.Type == "call" && m.CallID == placed.ID })
	var own call.Call
	if code := request(t, http.MethodGet, base+"/api/calls/"+placed.ID, annToken, nil, &own); code != 200 || own.ID != placed.ID {
		t.Fatalf("agent reads its call: %d", code)
	}
	if code := request(t, http.MethodGet, base+"/api/calls/"+placed.ID, bobToken, nil, nil); code != http.StatusNotFound {
		t.Fatalf("another agent reads the call: %d", code)
	}
	if code := request(t, http.MethodPost, base+"/api/calls", bobToken, map[string]string{"to": "+15551230000"}, nil); code != http.StatusConflict {
		t.Fatalf("dial for an agent not signed in: %d", code)
	}
	if code := request(t, http.MethodPost, base+"/api/calls", annToken, map[string]string{"to": "+15551230000"}, nil); code != http.StatusConflict {
		t.Fatalf("dial for an agent on a call: %d", code)
	}
}

// TestInboundCallAcrossInstances: the simulator's webhook reaches instance B; the agent is
// signed in on instance A; the call rings on A and its media stream is pointed at A.
func TestInboundCallAcrossInstances(t *testing.T) {
	d := newDeployment(t, 2, 1, nil)
	a, b := d.instances[0].base, d.instances[1].base
	ann := softphone(t, a, createAgent(t, b, "ann"))

	sid, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Twilio, From: "+15557654321"})
	if err != nil {
		t.Fatal(err)
	}
	ring := expectMessage(t, ann, "ringing on A", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ringing" })
	if ring.From != "+15557654321" {
		t.Fatalf("ringing: %s", ring.Raw)
	}
	r := d.report(sid, "the media stream", func(r sim.Report) bool { return r.StreamsOpened == 1 })
	wantURL := "ws" + strings.TrimPrefix(a, "http") + "/webhooks/simtw/media/" + ring.CallID
	if r.StreamURL != wantURL {
		t.Fatalf("the stream went to %s, want the agent's instance %s (webhooks reached %s)", r.StreamURL, wantURL, b)
	}
	ann.Send(map[string]any{"type": "answer", "call_id": ring.CallID})
	expectMessage(t, ann, "the call", func(m agentsim.SoftphoneMessage) bool { return m.Type == "call" && m.State == "in-progress" })
	d.report(sid, "the caller hearing the agent", func(r sim.Report) bool { return r.DominantHz == 440 && r.DominantPower > 0.05 })
	ann.Agent.ResetRecording()
	redistest.Eventually(t, 10*time.Second, "the agent hearing the caller", func() bool { return len(ann.Agent.Recording()) >= 8000 })
	if p := ann.Agent.DominantPower(1000); p < 0.05 {
		t.Errorf("the agent does not hear the caller: %.3f", p)
	}
	if err := d.sim.Hangup(sid); err != nil {
		t.Fatal(err)
	}
	if m := expectMessage(t, ann, "the end", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ended" }); m.Reason != "hangup" && m.Reason != "completed" {
		t.Fatalf("ended: %s", m.Raw)
	}
}

// TestNobodyAvailable: with no agent signed in, the caller hears the hold tone until the
// queue timeout, then the apology, then the call is hung up.
func TestNobodyAvailable(t *testing.T) {
	d := newDeployment(t, 1, 0, map[string]string{"SWITCHBOARD_QUEUE_TIMEOUT": "1500ms"})
	sid, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Twilio})
	if err != nil {
		t.Fatal(err)
	}
	r := d.report(sid, "the end of the call", func(r sim.Report) bool { return r.Status == "completed" })
	// The caller heard the hold tone while waiting: its beeps (two of 200 ms at 620 Hz, then
	// quiet, every 4 s) are the loudest thing in what the simulator heard. Judged on the sound,
	// not on how many bytes arrived in a window, which a loaded machine can shorten.
	if math.Abs(r.LoudestHz-media.HoldToneHz) > 5 || r.LoudestPower < 0.001 {
		t.Errorf("the caller heard %.0f Hz at %.4f while waiting, want the %d Hz hold tone", r.LoudestHz, r.LoudestPower, media.HoldToneHz)
	}
	// The simulator speaks a <Say> at 100 ms a word: the 13-word apology takes 1.3 s after
	// the stream closes at the queue timeout.
	if took := r.EndedAt.Sub(r.CreatedAt); took < 2700*time.Millisecond || took > 10*time.Second {
		t.Errorf("the call lasted %v from its creation: want the 1.5 s queue (from its arrival) and the 1.3 s apology", took)
	}
}
