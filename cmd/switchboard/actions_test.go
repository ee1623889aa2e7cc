package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"

	"github.com/switchboard/switchboard/carrier/sim"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// TestTelnyxInboundThroughJobs: an inbound Telnyx call is answered by its stored answer job
// (offered to the signed-in agent, its media pointed at the agent's instance, which is not
// the one its webhook reached), and the agent's hang-up in the softphone ends it through a
// stored hang-up job.
func TestTelnyxInboundThroughJobs(t *testing.T) {
	d := newDeployment(t, 2, 1, nil)
	a := d.instances[0].base
	ann := softphone(t, a, createAgent(t, a, "ann"))

	ccid, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Telnyx, From: "+15557654321"})
	if err != nil {
		t.Fatal(err)
	}
	ring := expectMessage(t, ann, "ringing", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ringing" })
	if ring.From != "+15557654321" || ring.CallID != store.InboundCallID("simtx", ccid) {
		t.Fatalf("ringing: %s", ring.Raw)
	}
	d.report(ccid, "the answer's media stream", func(r sim.Report) bool { return r.StreamsOpened == 1 })
	ann.Send(map[string]any{"type": "answer", "call_id": ring.CallID})
	expectMessage(t, ann, "the call", func(m agentsim.SoftphoneMessage) bool { return m.Type == "call" && m.State == "in-progress" })
	ann.Send(map[string]any{"type": "hangup", "call_id": ring.CallID})
	expectMessage(t, ann, "the end", func(m agentsim.SoftphoneMessage) bool { return m.Type == "ended" && m.CallID == ring.CallID })
	r := d.report(ccid, "the carrier's call ended by our hang-up", func(r sim.Report) bool { return !r.EndedAt.IsZero() })
	if r.AnsweredAt.IsZero() {
		t.Fatalf("the call ended without being answered: %+v", r)
	}
	for _, kind := range []string{store.JobAnswer, store.JobHangup} {
		var j store.JobStatus
		redistest.Eventually(t, 5*time.Second, kind+" job done", func() bool {
			j, _ = d.st.JobOf(t.Context(), store.JobID(kind, ring.CallID))
			return j.State == "done"
		})
		if j.Attempts != 1 {
			t.Fatalf("%s job = %+v; want done at the first attempt", kind, j)
		}
	}
}

// TestTelnyxNobodyAvailable: an inbound Telnyx call nobody takes waits in the queue, answered
// (hold tone), then is let go by a stored reject job, which hangs it up since it was answered.
func TestTelnyxNobodyAvailable(t *testing.T) {
	d := newDeployment(t, 1, 0, map[string]string{"SWITCHBOARD_QUEUE_TIMEOUT": "1s"})
	ccid, err := d.sim.Inbound(sim.InboundRequest{Kind: sim.Telnyx})
	if err != nil {
		t.Fatal(err)
	}
	r := d.report(ccid, "the end of the call", func(r sim.Report) bool { return !r.EndedAt.IsZero() })
	if r.AnsweredAt.IsZero() || r.BytesReceived < 4000 {
		t.Fatalf("the caller did not wait in the queue hearing the hold tone: %+v", r)
	}
	// The queue timeout runs from the call's arrival (its webhook), which the simulator's
	// creation of the call precedes and its answer follows by a few milliseconds: so the call
	// lasts at least the timeout from its creation, not necessarily from its answer.
	if took := r.EndedAt.Sub(r.CreatedAt); took < time.Second || took > 10*time.Second {
		t.Errorf("the call lasted %v after it was created: want about the 1 s queue timeout", took)
	}
	// The carrier ends the call before its answer reaches the job, which is marked done after.
	redistest.Eventually(t, 5*time.Second, "the reject job done", func() bool {
		j, err := d.st.JobOf(t.Context(), store.JobID(store.JobReject, store.InboundCallID("simtx", ccid)))
		return err == nil && j.State == "done"
	})
}

// TestHangupThroughTheAPI: POST /api/calls/{id}/hangup answers 202 with the live call, the
// carrier ends it, and Twilio's answer to the hang-up request is in the call's history; a
// second hang-up of the ended call is 409.
func TestHangupThroughTheAPI(t *testing.T) {
	d := newDeployment(t, 1, 0, nil)
	base := d.instances[0].base
	placed := placeAnswered(t, base)
	var got call.Call
	var hung call.Call
	if code := request(t, http.MethodPost, base+"/api/calls/"+placed.ID+"/hangup", adminToken, nil, &hung); code != http.StatusAccepted || hung.ID != placed.ID {
		t.Fatalf("hang-up: %d %+v", code, hung)
	}
	// The carrier's answer and its completed callback race; both end in the history.
	redistest.Eventually(t, 10*time.Second, "the call completed, with the carrier's answer to the hang-up", func() bool {
		if request(t, http.MethodGet, base+"/api/calls/"+placed.ID, adminToken, nil, &got) != 200 || got.State != call.Completed {
			return false
		}
		for _, h := range got.History {
			if strings.HasPrefix(h.EventID, "api:hangup:") && h.State == call.Completed {
				return true
			}
		}
		return false
	})
	if code := request(t, http.MethodPost, base+"/api/calls/"+placed.ID+"/hangup", adminToken, nil, nil); code != http.StatusConflict {
		t.Fatalf("hang-up of an ended call: %d, want 409", code)
	}
}
