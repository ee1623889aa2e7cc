package webhooks

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
)

// agentsElsewhere takes every inbound call and says its media goes to another instance.
type agentsElsewhere struct {
	mu       sync.Mutex
	accepted []InboundCall
}

func (a *agentsElsewhere) Accept(_ context.Context, c InboundCall) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.accepted = append(a.accepted, c)
	return nil
}

func (a *agentsElsewhere) MediaBase(context.Context, string) (string, error) {
	return "https://b.example.com", nil
}

// TestMediaStreamPointsAtTheAgentsInstance: the voice answer and the Telnyx answer point the
// call's media stream at the instance the locator names. After the stream, both directions
// wait StreamGrace for a re-point (an instance that dies closes the stream); then an inbound
// caller hears the apology and an outbound call hangs up.
func TestMediaStreamPointsAtTheAgentsInstance(t *testing.T) {
	agents := &agentsElsewhere{}
	h := newHarness(t, redistest.URL(t), func(d *Deps) {
		d.Inbound, d.Locate, d.Actions = agents, agents, d.Store.(*store.Redis)
	})
	sid := "CA" + strings.Repeat("4e", 16)
	form := url.Values{"CallSid": {sid}, "CallStatus": {"ringing"}, "Direction": {"inbound"},
		"From": {"+15550111"}, "To": {"+15550100"}, "AccountSid": {"AC" + strings.Repeat("0", 32)}}
	doc := body(h.twilio("/webhooks/tw/voice", form, true))
	id := store.InboundCallID("tw", sid)
	if !strings.Contains(doc, `<Stream url="wss://b.example.com/webhooks/tw/media/`+id+`"><Parameter name="sb_call" value="`+id+`"/>`) {
		t.Fatalf("stream not pointed at the agent's instance: %s", doc)
	}
	if !strings.Contains(doc, `</Connect><Pause length="20"/><Say>`) || !strings.HasSuffix(doc, `<Hangup/></Response>`) {
		t.Fatalf("no pause and apology after the stream: %s", doc)
	}
	if len(agents.accepted) != 1 || agents.accepted[0].CallID != id || agents.accepted[0].From != "+15550111" {
		t.Fatalf("accepted %+v", agents.accepted)
	}

	// An outbound call's answer has no apology: after the pause, the call ends.
	out := store.NewCallID()
	form = url.Values{"CallSid": {"CA" + strings.Repeat("5f", 16)}, "CallStatus": {"in-progress"}, "Direction": {"outbound-api"},
		"From": {"+15550100"}, "To": {"+15550111"}, "AccountSid": {"AC" + strings.Repeat("0", 32)}}
	doc = body(h.twilio("/webhooks/tw/voice?sb_call="+out, form, true))
	if !strings.Contains(doc, `wss://b.example.com/webhooks/tw/media/`+out+`"`) || strings.Contains(doc, "<Say>") ||
		!strings.HasSuffix(doc, `</Connect><Pause length="20"/><Hangup/></Response>`) {
		t.Fatalf("outbound answer: %s", doc)
	}

	ccid := "v3:" + strings.Repeat("b", 20)
	if r := h.telnyxPost("/webhooks/tx/events", signedTelnyxFixture("ev-1", "call.initiated", ccid, "incoming", nil), time.Now()); r.StatusCode != 204 {
		t.Fatalf("call.initiated: %d", r.StatusCode)
	}
	job, err := h.st.JobOf(context.Background(), store.JobID(store.JobAnswer, store.InboundCallID("tx", ccid)))
	if err != nil {
		t.Fatal(err)
	}
	url, taken, err := h.srv.PrepareAnswer(context.Background(), job.Job)
	if err != nil || !taken || !strings.HasPrefix(url, "wss://b.example.com/webhooks/tx/media?sb_call=") {
		t.Fatalf("Telnyx answer: %q, %v, %v", url, taken, err)
	}
}
