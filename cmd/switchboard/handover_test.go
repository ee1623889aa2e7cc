package main

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// TestGracefulStopHandsCallsOver: two run() instances on one Redis and the carrier simulator.
// The agent and the call's media are on B; B is stopped (as by SIGTERM). Before it exits, A
// takes the call over and the simulator, told through its REST API, streams the call to A;
// the softphone signs in again on A (as the page reconnects by itself) and resumes the call:
// audio both ways again, the call never dropped, for each carrier kind.
func TestGracefulStopHandsCallsOver(t *testing.T) {
	for _, kind := range []sim.Kind{sim.Twilio, sim.Telnyx} {
		t.Run(string(kind), func(t *testing.T) {
			d := newDeployment(t, 2, 0, nil, func(c *sim.Config) { c.WatchHz = 440 })
			a, b := d.instances[0], d.instances[1]
			token := createAgent(t, a.base, "ann")
			ann := softphone(t, b.base, token)

			sid, err := d.sim.Inbound(sim.InboundRequest{Kind: kind, From: "+15557654321"})
			if err != nil {
				t.Fatal(err)
			}
			ring := expectMessage(t, ann, "ringing on B", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ringing" })
			ann.Send(map[string]any{"type": "answer", "call_id": ring.CallID})
			expectMessage(t, ann, "the call", func(m agentsim.SoftphoneMessage) bool { return m.Type == "call" && m.State == "in-progress" })
			d.report(sid, "the caller hearing the agent on B", func(r sim.Report) bool { return r.DominantHz == 440 && r.DominantPower > 0.05 })

			stopped := time.Now()
			b.stop()
			again := softphone(t, a.base, token) // the page reconnects to a survivor
			r := d.report(sid, "the call's stream moved to A", func(r sim.Report) bool { return r.StreamsOpened == 2 })
			moved := time.Now()
			if r.Status != "in-progress" {
				t.Fatalf("the call did not survive the stop: %+v", r)
			}
			again.Agent.ResetRecording()
			redistest.Eventually(t, 15*time.Second, "the agent on A hearing the caller", func() bool {
				rec := again.Agent.Recording()
				return len(rec) >= 8000 && again.Agent.DominantPower(1000) > 0.05
			})
			back := time.Since(stopped)
			// The caller hears the agent's tone on the new stream. (The switch's silence is a
			// tone gap only when it is longer than the watch's jitter allowance, so the gaps are
			// reported, not required.)
			r = d.report(sid, "the caller hearing the agent again", func(r sim.Report) bool {
				return r.ToneHeardAt.After(moved) && r.Status == "in-progress"
			})
			var longest time.Duration
			for _, g := range r.ToneGaps {
				longest = max(longest, g.Length)
			}
			t.Logf("%s: the agent hears the caller again %v after the stop; the caller's longest silence %v (%d gaps)",
				kind, back.Round(time.Millisecond), longest.Round(time.Millisecond), len(r.ToneGaps))
			for _, m := range again.Messages() {
				if m.Type == "ended" {
					t.Fatalf("the agent was told the call ended: %s", m.Raw)
				}
			}
		})
	}
}
