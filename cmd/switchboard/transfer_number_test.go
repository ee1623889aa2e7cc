package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// TestBlindTransferToNumberThroughTheSimulator: ann, signed in on instance A, takes an inbound
// call whose webhooks reach instance B, and transfers it through the API to a number. The leg
// is placed through the simulator; its webhooks reach B too, but its stream goes to A, which
// holds the caller's; there the two carrier legs hear each other (the simulator plays 1000 Hz
// on both: the agent's 440 Hz and the hold tone never do). The far end hanging up ends the
// caller's call. A busy number then gives the next call back to ann.
func TestBlindTransferToNumberThroughTheSimulator(t *testing.T) {
	d := newDeployment(t, 2, 1, map[string]string{"SWITCHBOARD_WRAP_UP": "200ms"}, func(c *sim.Config) { c.WatchHz = 1000 })
	a, b := d.instances[0].base, d.instances[1].base
	annToken := createAgent(t, b, "ann")
	ann := softphone(t, a, annToken)

	answer := func() (string, string) {
		t.Helper()
		sid, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Twilio, From: "+15557654321"})
		if err != nil {
			t.Fatal(err)
		}
		ring := expectMessage(t, ann, "ringing", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ringing" })
		ann.Send(map[string]any{"type": "answer", "call_id": ring.CallID})
		expectMessage(t, ann, "the call", func(m agentsim.SoftphoneMessage) bool {
			return m.Type == "call" && m.CallID == ring.CallID && m.State == "in-progress"
		})
		d.report(sid, "the caller hearing ann", func(r sim.Report) bool { return r.DominantHz == 440 && r.DominantPower > 0.05 })
		return sid, ring.CallID
	}
	transfer := func(id, to string) {
		t.Helper()
		if code := request(t, http.MethodPost, b+"/api/calls/"+id+"/transfer", annToken, map[string]string{"to": to, "mode": "blind"}, nil); code != http.StatusAccepted {
			t.Fatalf("transfer to %s: %d", to, code)
		}
		if m := expectMessage(t, ann, "ann released", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ended" && m.CallID == id }); m.Reason != "transferred" {
			t.Fatalf("ann: %s", m.Raw)
		}
	}

	callerSID, id := answer()
	if r, _ := d.sim.CallReport(callerSID); !r.ToneHeardAt.IsZero() {
		t.Fatalf("the caller heard 1000 Hz before the transfer: %+v", r.ToneHeardAt)
	}
	transfer(id, "+15551230000")
	farSID := d.simCall("outbound")
	far := d.report(farSID, "the far end hearing the caller", func(r sim.Report) bool { return !r.ToneHeardAt.IsZero() })
	if want := "ws" + strings.TrimPrefix(a, "http") + "/webhooks/simtw/media/"; !strings.HasPrefix(far.StreamURL, want) {
		t.Fatalf("the leg's stream went to %s, want the caller's holder %s", far.StreamURL, want)
	}
	d.report(callerSID, "the caller hearing the far end", func(r sim.Report) bool { return !r.ToneHeardAt.IsZero() })

	var got call.Call
	if code := request(t, http.MethodGet, b+"/api/calls/"+id, adminToken, nil, &got); code != http.StatusOK {
		t.Fatalf("read the call: %d", code)
	}
	linked := false
	for _, e := range got.History {
		linked = linked || strings.HasPrefix(e.Detail, "transferred by agent ann to +15551230000 (call CL")
	}
	if !linked {
		t.Errorf("the call's history does not name the leg: %+v", got.History)
	}

	if err := d.sim.Hangup(farSID); err != nil {
		t.Fatal(err)
	}
	d.report(callerSID, "the caller's call ended with the far end", func(r sim.Report) bool { return r.Status == "completed" })
	expectMessage(t, ann, "ann available", func(m agentsim.SoftphoneMessage) bool { return m.Type == "availability" && m.State == "available" })

	// A busy number: the caller comes back to ann.
	_, id2 := answer()
	transfer(id2, "+15551230001")
	ring := expectMessage(t, ann, "ann rung again", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ringing" && m.CallID == id2 })
	ann.Send(map[string]any{"type": "answer", "call_id": ring.CallID})
	expectMessage(t, ann, "ann has the call again", func(m agentsim.SoftphoneMessage) bool {
		return m.Type == "call" && m.CallID == id2 && m.State == "in-progress"
	})
}

// TestNumberBridgeHandedOverThroughTheSimulator: a caller bridged to a number on instance A
// (the holder of both streams; webhooks reach B) survives A's graceful stop: B claims the
// call with its leg and has the simulator stream both carrier legs to it (Twilio call
// updates; Telnyx streaming_start, the caller and the leg both on Telnyx, made the primary);
// both hear each other again, neither call dropped, and the far end hanging up still ends
// the caller's call.
func TestNumberBridgeHandedOverThroughTheSimulator(t *testing.T) {
	for _, kind := range []sim.Kind{sim.Twilio, sim.Telnyx} {
		t.Run(string(kind), func(t *testing.T) { numberBridgeHandedOver(t, kind) })
	}
}

func numberBridgeHandedOver(t *testing.T, kind sim.Kind) {
	n := transferredToNumber(t, kind, map[string]string{"SWITCHBOARD_WRAP_UP": "200ms"}, func(c *sim.Config) { c.WatchHz = 1000 })
	d, a, b, id, callerSID, farSID := n.d, n.a, n.b, n.id, n.callerSID, n.farSID
	d.report(farSID, "the far end hearing the caller", func(r sim.Report) bool { return !r.ToneHeardAt.IsZero() })
	d.report(callerSID, "the caller hearing the far end", func(r sim.Report) bool { return !r.ToneHeardAt.IsZero() })
	offers := agentdb.New(d.st)
	redistest.Eventually(t, 5*time.Second, "the leg's answer stored", func() bool {
		o, err := offers.Offer(context.Background(), id)
		return err == nil && o.NumberAnswered
	})

	stopped := time.Now()
	a.stop()
	moved := map[string]time.Time{}
	for _, sid := range []string{callerSID, farSID} {
		r := d.report(sid, "the stream of "+sid+" moved to B", func(r sim.Report) bool { return r.StreamsOpened == 2 })
		moved[sid] = time.Now()
		if r.Status != "in-progress" || !strings.HasPrefix(r.StreamURL, "ws"+strings.TrimPrefix(b.base, "http")) {
			t.Fatalf("call %s after the stop: %+v", sid, r)
		}
	}
	var gaps []string
	for _, sid := range []string{callerSID, farSID} {
		r := d.report(sid, "both sides hearing each other again", func(r sim.Report) bool {
			return r.ToneHeardAt.After(moved[sid]) && r.Status == "in-progress"
		})
		var longest time.Duration
		for _, g := range r.ToneGaps {
			longest = max(longest, g.Length)
		}
		gaps = append(gaps, longest.Round(time.Millisecond).String())
	}
	t.Logf("%s: bridged again on B %v after the stop; longest silence: caller %s, far end %s",
		kind, time.Since(stopped).Round(time.Millisecond), gaps[0], gaps[1])

	if err := d.sim.Hangup(farSID); err != nil {
		t.Fatal(err)
	}
	d.report(callerSID, "the caller's call ended with the far end", func(r sim.Report) bool { return r.Status == "completed" })
}

// TestRingingNumberLegAnswersAfterItsHolderStopped: the number still rings when the caller's
// holder A (which placed the leg) stops; B takes the call over. A Twilio leg, answered, asks
// A's voice URL for its TwiML, cannot reach it and asks its fallback URL, B's (the placer
// gives every Twilio call another live instance's): B streams it to itself, and the caller
// and the far end hear each other on B; the far end hanging up still ends the caller's call.
// A Telnyx leg has no per-call fallback: its webhooks and its stream go to A, which is gone,
// so B never hears it answer; at the no-answer timeout the leg is hung up and the caller is
// given back to ann, not lost.
func TestRingingNumberLegAnswersAfterItsHolderStopped(t *testing.T) {
	for _, kind := range []sim.Kind{sim.Twilio, sim.Telnyx} {
		t.Run(string(kind), func(t *testing.T) { ringingLegAnswersAfterItsHolderStopped(t, kind) })
	}
}

func ringingLegAnswersAfterItsHolderStopped(t *testing.T, kind sim.Kind) {
	// The far end rings for 3 s: long enough for A to stop first. The no-answer timeout (the
	// queue timeout) is short, for the Telnyx case.
	n := transferredToNumber(t, kind, map[string]string{"SWITCHBOARD_WRAP_UP": "200ms", "SWITCHBOARD_QUEUE_TIMEOUT": "6s"},
		func(c *sim.Config) { c.WatchHz, c.Ring = 1000, 3*time.Second })
	d, a, b, id, callerSID, farSID := n.d, n.a, n.b, n.id, n.callerSID, n.farSID
	a.stop()
	redistest.Eventually(t, 5*time.Second, "A gone", func() bool {
		resp, err := http.Get(a.base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})
	if r := d.report(farSID, "the far end", func(sim.Report) bool { return true }); !r.AnsweredAt.IsZero() {
		t.Fatalf("the far end answered before A stopped (%v): the test proves nothing", r.AnsweredAt)
	}
	d.report(callerSID, "the caller's stream moved to B", func(r sim.Report) bool { return r.StreamsOpened == 2 })

	if kind == sim.Telnyx {
		again := softphone(t, b.base, n.annToken) // ann's page reconnects to the survivor
		expectMessage(t, again, "ann rung again at the no-answer timeout", func(m agentsim.SoftphoneMessage) bool {
			return m.Type == "ringing" && m.CallID == id
		})
		d.report(farSID, "the silent far end hung up", func(r sim.Report) bool { return r.Status == "completed" })
		if r := d.report(callerSID, "the caller", func(sim.Report) bool { return true }); r.Status != "in-progress" {
			t.Fatalf("the caller's call did not survive: %+v", r)
		}
		return
	}
	far := d.report(farSID, "the far end hearing the caller on B", func(r sim.Report) bool { return !r.ToneHeardAt.IsZero() })
	if !strings.HasPrefix(far.StreamURL, "ws"+strings.TrimPrefix(b.base, "http")) || far.Status != "in-progress" {
		t.Fatalf("the far end after its answer: %+v", far)
	}
	d.report(callerSID, "the caller hearing the far end", func(r sim.Report) bool {
		return r.ToneHeardAt.After(far.AnsweredAt) && r.Status == "in-progress"
	})
	t.Logf("%s: both hear each other %v after the far end answered", kind, time.Since(far.AnsweredAt).Round(time.Millisecond))
	if err := d.sim.Hangup(farSID); err != nil {
		t.Fatal(err)
	}
	d.report(callerSID, "the caller's call ended with the far end", func(r sim.Report) bool { return r.Status == "completed" })
}

// numberBridge is a caller of one carrier kind, answered by ann on instance A (which holds
// the caller's media; webhooks reach B) and blind-transferred by her to a number: the leg is
// placed by A through a carrier of the same kind.
type numberBridge struct {
	d                     *deployment
	a, b                  *server
	annToken              string
	ann                   *agentsim.SimSoftphone
	id, callerSID, farSID string
}

func transferredToNumber(t *testing.T, kind sim.Kind, env map[string]string, tweak func(*sim.Config)) *numberBridge {
	t.Helper()
	d := newDeployment(t, 2, 1, env, tweak)
	n := &numberBridge{d: d, a: d.instances[0], b: d.instances[1]}
	if kind == sim.Telnyx {
		d.makePrimary("simtx")
	}
	n.annToken = createAgent(t, n.b.base, "ann")
	n.ann = softphone(t, n.a.base, n.annToken)
	var err error
	if n.callerSID, err = d.sim.Inbound(sim.InboundRequest{Kind: kind, From: "+15557654321"}); err != nil {
		t.Fatal(err)
	}
	ring := expectMessage(t, n.ann, "ringing", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ringing" })
	n.id = ring.CallID
	n.ann.Send(map[string]any{"type": "answer", "call_id": n.id})
	expectMessage(t, n.ann, "the call", func(m agentsim.SoftphoneMessage) bool {
		return m.Type == "call" && m.CallID == n.id && m.State == "in-progress"
	})
	if code := request(t, http.MethodPost, n.b.base+"/api/calls/"+n.id+"/transfer", n.annToken,
		map[string]string{"to": "+15551230000", "mode": "blind"}, nil); code != http.StatusAccepted {
		t.Fatalf("transfer: %d", code)
	}
	n.farSID = d.simCall("outbound")
	if far := d.report(n.farSID, "the leg", func(sim.Report) bool { return true }); far.Kind != kind {
		t.Fatalf("the leg was placed through a %s carrier, want %s", far.Kind, kind)
	}
	return n
}
