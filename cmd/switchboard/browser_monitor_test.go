package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agentsim"
	"github.com/switchboard/switchboard/webrtc/media"
)

// monitorHz is the supervisor's fake microphone.
const monitorHz = 1800

// monitorHears is a console condition: the monitor panel's audio carries each tone of on
// (above -40 dB) and each of off at least 20 dB below the quietest of on.
func monitorHears(on []float64, off ...float64) string {
	return tonesHeard("switchboardMonitor", on, off...)
}

// TestBrowserSupervisorMonitorsACall: a supervisor's console listens to a live call between
// the simulated carrier (1000 Hz) and a simulated agent (440 Hz) from the wallboard and hears
// both, without a microphone; whispering, the agent hears the supervisor's 1800 Hz and the
// caller does not (the simulator's tone watch never fires); barging in, the caller hears it;
// stopping, the call goes on. Once with the console on the instance holding the call, once on
// another (its audio through the relay). Timings are logged, not asserted.
func TestBrowserSupervisorMonitorsACall(t *testing.T) {
	t.Run("on the holder", func(t *testing.T) { testBrowserMonitor(t, 1) })
	t.Run("on another instance", func(t *testing.T) { testBrowserMonitor(t, 2) })
}

// testBrowserMonitor runs the monitoring test on n instances, the console on the last one and
// the agent on the first.
func testBrowserMonitor(t *testing.T, n int) {
	d := newDeployment(t, n, 0, nil, func(c *sim.Config) { c.WatchHz = monitorHz; c.HangupAfter = time.Minute })
	base, console := d.instances[0].base, d.instances[n-1].base
	supToken := createSupervisor(t, base, "sue")
	annToken := createAgent(t, base, "ann")
	ann := softphone(t, base, annToken)

	sid, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Twilio, From: "+15557654321"})
	if err != nil {
		t.Fatal(err)
	}
	ring := expectMessage(t, ann, "ringing", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ringing" })
	if err := ann.Send(map[string]any{"type": "answer", "call_id": ring.CallID}); err != nil {
		t.Fatal(err)
	}
	d.report(sid, "the caller hearing the agent", func(r sim.Report) bool { return r.DominantHz == browserHz && r.DominantPower > 0.1 })
	if o, err := agentdb.New(d.st).Offer(context.Background(), ring.CallID); err != nil {
		t.Fatal(err)
	} else if held := o.HolderURL == console; held != (n == 1) {
		t.Fatalf("the call is held at %s, the console is on %s: not the case this test is for", o.HolderURL, console)
	}

	ctx := newBrowser(t, writeToneWAV(t, monitorHz, 0.5, 30))
	p := page{t: t, ctx: ctx}
	// ?raw: the supervisor's steady test tone is not taken for noise (docs/console.md).
	p.do("open the console", chromedp.Navigate(console+"/admin?raw#wallboard"))
	p.do("sign in", chromedp.SendKeys(tid("token-input"), supToken), chromedp.Click(tid("token-save")))
	p.wait("the first floor", `document.querySelector('[data-testid="status"]').textContent.startsWith('live')`)
	row := `document.querySelector('[data-testid="live-call-row"][data-call="` + ring.CallID + `"]')`
	p.wait("the live call with its agent", row+` !== null && !`+row+`.querySelector('[data-testid="live-call-monitor"]').disabled`)

	clicked := time.Now()
	p.do("listen", chromedp.Click(`[data-testid="live-call-row"][data-call="`+ring.CallID+`"] [data-testid="live-call-monitor"]`))
	p.wait("listening", `document.querySelector('[data-testid="monitor-state"]').dataset.state === 'listening'`)
	p.wait("the supervisor hearing the caller and the agent", monitorHears([]float64{simulatorHz, browserHz}, monitorHz))
	t.Logf("listen: click → hearing both tones: %v", time.Since(clicked).Round(time.Millisecond))
	t.Logf("listening: %.1f dB at 1000 Hz, %.1f dB at 440 Hz, %.1f dB at 1800 Hz",
		p.eval(`window.switchboardMonitor.power(1000)`), p.eval(`window.switchboardMonitor.power(440)`), p.eval(`window.switchboardMonitor.power(1800)`))
	if p.eval(`window.switchboardMonitor.sending() ? 1 : 0`) != 0 {
		t.Error("listening, the page sends its microphone")
	}

	// Whisper: the agent hears the supervisor; the caller never does.
	clicked = time.Now()
	p.do("whisper", chromedp.Click(tid("monitor-whisper")))
	p.wait("whispering", `document.querySelector('[data-testid="monitor-state"]').dataset.state === 'whispering'`)
	ann.Agent.ResetRecording()
	redistest.Eventually(t, 10*time.Second, "the agent hearing the whisper", func() bool {
		rec := ann.Agent.Recording()
		return len(rec) >= 3200 && media.Goertzel(rec[len(rec)-3200:], monitorHz) > 0.02
	})
	t.Logf("whisper: click → the agent hears the supervisor: %v", time.Since(clicked).Round(time.Millisecond))
	// A second of whispering the caller must not hear.
	ann.Agent.ResetRecording()
	redistest.Eventually(t, 10*time.Second, "a second of whispering", func() bool { return len(ann.Agent.Recording()) >= 8000 })
	if r := d.report(sid, "the caller's side", func(sim.Report) bool { return true }); !r.ToneHeardAt.IsZero() {
		t.Errorf("the caller heard the whisper (at %v)", r.ToneHeardAt)
	} else {
		t.Logf("whispering, the caller hears %v Hz at power %.3f and never the supervisor's tone", r.DominantHz, r.DominantPower)
	}

	// Barge in, the agent muted so the caller hears the supervisor alone: the tone watch that
	// stayed quiet above fires, so its silence meant something.
	ann.Agent.Mute(true)
	clicked = time.Now()
	p.do("barge", chromedp.Click(tid("monitor-barge")))
	p.wait("barged", `document.querySelector('[data-testid="monitor-state"]').dataset.state === 'barged'`)
	d.report(sid, "the caller hearing the supervisor", func(r sim.Report) bool { return !r.ToneHeardAt.IsZero() })
	t.Logf("barge: click → the caller hears the supervisor: %v", time.Since(clicked).Round(time.Millisecond))
	ann.Agent.Mute(false)

	// Stop: the call goes on.
	p.do("stop", chromedp.Click(tid("monitor-stop")))
	p.wait("stopped", `document.querySelector('[data-testid="monitor-state"]').dataset.state === 'stopped'`)
	ann.Agent.ResetRecording()
	redistest.Eventually(t, 10*time.Second, "the agent hearing the caller after the monitor left", func() bool {
		rec := ann.Agent.Recording()
		return len(rec) >= 3200 && media.Goertzel(rec[len(rec)-3200:], simulatorHz) > 0.02 &&
			media.Goertzel(rec[len(rec)-3200:], monitorHz) < 0.001
	})
	if r := d.report(sid, "the call", func(sim.Report) bool { return true }); r.Status != "in-progress" {
		t.Errorf("after the monitor left the call is %s", r.Status)
	}
	for _, m := range ann.Messages() {
		if m.Type == "ended" {
			t.Errorf("the call ended for the agent: %s", m.Raw)
		}
	}

	// Each start and change of mode is audited: who, which call, which mode.
	var audit struct {
		Entries []struct{ Actor, Action, Target, Detail string } `json:"entries"`
	}
	redistest.Eventually(t, 5*time.Second, "the monitoring in the audit log", func() bool {
		if request(t, http.MethodGet, base+"/api/admin/audit", adminToken, nil, &audit) != http.StatusOK {
			return false
		}
		var seen []string
		for _, e := range audit.Entries {
			if e.Target == ring.CallID && e.Actor == "supervisor:sue" {
				seen = append(seen, e.Action+" "+e.Detail)
			}
		}
		all := strings.Join(seen, ", ")
		return strings.Contains(all, "call.monitor mode listen") && strings.Contains(all, "call.monitor.mode mode whisper") &&
			strings.Contains(all, "call.monitor.mode mode barge")
	})
}

// TestMonitorSocketTokens: the monitor socket of a real instance takes the admin token and a
// supervisor's, and refuses an agent's and a bad one, each with its code.
func TestMonitorSocketTokens(t *testing.T) {
	s := start(t, map[string]string{"SWITCHBOARD_REDIS_NAMESPACE": redistest.Namespace(t)}) // its own agents
	supToken := createSupervisor(t, s.base, "sue")
	annToken := createAgent(t, s.base, "ann")
	for _, c := range []struct{ who, token, code string }{
		{"an agent", annToken, "forbidden"},
		{"a bad token", "ann.nope", "unauthorized"},
		{"no token", "", "unauthorized"},
		{"a supervisor", supToken, "no_call"}, // let in; the call is not live
		{"the admin", adminToken, "no_call"},
	} {
		ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.base, "http")+"/agent/monitor", nil)
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.WriteJSON(map[string]string{"type": "monitor", "token": c.token, "call_id": "CLnone", "mode": "listen"}); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got struct{ Type, Code string }
		if err := ws.ReadJSON(&got); err != nil {
			t.Fatalf("%s: %v", c.who, err)
		}
		if got.Type != "error" || got.Code != c.code {
			t.Errorf("%s: %+v, want error %s", c.who, got, c.code)
		}
		_ = ws.Close()
	}
}
