package agents

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// TestWrapUpOverSignalling: welcome lists the dispositions; the agent saves notes and a
// disposition for the call it just had (acknowledged by wrapup-saved, the call shows them,
// and its call-detail record too); a disposition not in the list, notes too long, another
// agent's call and an unknown one are refused with an error naming the call and a code, and
// nothing of them is stored; once its window has closed the agent's save is refused.
func TestWrapUpOverSignalling(t *testing.T) {
	h := newTestHub(t, "", func(o *HubOptions) {
		o.Dispositions = call.Dispositions{"sale", "no sale", "callback"}
		o.WrapUpWindow = 2 * time.Second
	})
	ctx := context.Background()
	ann := h.agent(t, "ann", 440)
	var welcome agentsim.SoftphoneMessage // taken by the sign-in already
	for _, m := range ann.Messages() {
		if m.Type == signal.TypeWelcome {
			welcome = m
		}
	}
	var w struct {
		Dispositions []string `json:"dispositions"`
		MaxNotes     int      `json:"max_notes"`
	}
	if err := json.Unmarshal(welcome.Raw, &w); err != nil || strings.Join(w.Dispositions, ",") != "sale,no sale,callback" || w.MaxNotes != call.MaxNotes {
		t.Fatalf("welcome: %s", welcome.Raw)
	}

	id := h.inbound(t, "+15557654321")
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	stream := startStream(t, h.Hub, id, 1000)
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "the call", typed(signal.TypeCall, id))
	// While still on the call: taken.
	ann.Send(map[string]any{"type": signal.TypeWrapUp, "call_id": id, "notes": "asks about prices", "disposition": "callback"})
	expect(t, ann, "saved during the call", typed(signal.TypeWrapUpSaved, id))
	stream.hangUp()
	expect(t, ann, "the end", typed(signal.TypeEnded, id))
	if _, err := h.st.Apply(ctx, call.Event{ID: id + ":end", CallID: id, State: call.Completed, Carrier: "tw"}); err != nil {
		t.Fatal(err)
	}

	refusals := []struct {
		name string
		msg  map[string]any
		code string
	}{
		{"not listed", map[string]any{"call_id": id, "disposition": "resolved"}, signal.CodeInvalid},
		{"no disposition", map[string]any{"call_id": id, "notes": "x"}, signal.CodeInvalid},
		{"notes too long", map[string]any{"call_id": id, "notes": strings.Repeat("n", call.MaxNotes+1), "disposition": "sale"}, signal.CodeInvalid},
		{"unknown call", map[string]any{"call_id": "CLnope", "disposition": "sale"}, signal.CodeNotFound},
	}
	bobs := "CLbobs" + id[6:]
	if _, err := h.st.Apply(ctx, call.Event{ID: "b", CallID: bobs, State: call.Completed, Agent: "bob", Carrier: "tw"}); err != nil {
		t.Fatal(err)
	}
	refusals = append(refusals, struct {
		name string
		msg  map[string]any
		code string
	}{"another agent's call", map[string]any{"call_id": bobs, "disposition": "sale"}, signal.CodeNotFound})
	for _, r := range refusals {
		r.msg["type"] = signal.TypeWrapUp
		ann.Send(r.msg)
		m := expect(t, ann, r.name+": the error", func(m agentsim.SoftphoneMessage) bool {
			return m.Type == signal.TypeError && m.CallID == r.msg["call_id"]
		})
		if m.Code != r.code || m.Message == "" {
			t.Errorf("%s: %s, want code %s", r.name, m.Raw, r.code)
		}
	}
	if c, _ := h.st.Call(ctx, bobs); c.WrapUp != (call.WrapUp{}) {
		t.Fatalf("a refused wrap-up was stored: %+v", c.WrapUp)
	}

	// After the call: the agent changes its mind; the record carries the newest.
	ann.Send(map[string]any{"type": signal.TypeWrapUp, "call_id": id, "notes": "bought the red one", "disposition": "sale"})
	saved := expect(t, ann, "saved after the call", func(m agentsim.SoftphoneMessage) bool {
		return m.Type == signal.TypeWrapUpSaved && m.CallID == id && strings.Contains(string(m.Raw), `"sale"`)
	})
	c, err := h.st.Call(ctx, id)
	if err != nil || c.Notes != "bought the red one" || c.Disposition != "sale" || c.WrappedUpBy != "agent:ann" {
		t.Fatalf("call after the wrap-up: %+v %v (ack %s)", c.WrapUp, err, saved.Raw)
	}
	if h := c.History[len(c.History)-1]; h.Source != call.SourceAgent {
		t.Fatalf("last history entry %+v, want the agent's wrap-up", h)
	}
	cdrs, err := h.st.RecentCDRs(ctx, 10)
	found := false
	for _, r := range cdrs {
		found = found || (r.CallID == id && r.Disposition == "sale" && r.Notes == "bought the red one")
	}
	if err != nil || !found {
		t.Fatalf("call-detail records %+v %v: want the call's with its wrap-up", cdrs, err)
	}

}

// TestWrapUpWindowCloses: the agent may save while on the call, and not once the window
// after the call's end has passed (1 ns here).
func TestWrapUpWindowCloses(t *testing.T) {
	h := newTestHub(t, "", func(o *HubOptions) { o.WrapUpWindow = time.Nanosecond })
	ctx := context.Background()
	ann := h.agent(t, "ann", 440)
	id := h.inbound(t, "+15557654321")
	expect(t, ann, "ringing", typed(signal.TypeRinging, id))
	startStream(t, h.Hub, id, 1000)
	ann.Send(map[string]any{"type": signal.TypeAnswer, "call_id": id})
	expect(t, ann, "the call", typed(signal.TypeCall, id))
	ann.Send(map[string]any{"type": signal.TypeWrapUp, "call_id": id, "disposition": "resolved"})
	expect(t, ann, "saved during the call", typed(signal.TypeWrapUpSaved, id))
	if _, err := h.st.Apply(ctx, call.Event{ID: id + ":end", CallID: id, State: call.Completed, Carrier: "tw"}); err != nil {
		t.Fatal(err)
	}
	expect(t, ann, "the end", typed(signal.TypeEnded, id))
	ann.Send(map[string]any{"type": signal.TypeWrapUp, "call_id": id, "notes": "late", "disposition": "spam"})
	if m := expect(t, ann, "refused", typed(signal.TypeError, id)); m.Code != signal.CodeClosed {
		t.Fatalf("after the window: %s", m.Raw)
	}
	if c, _ := h.st.Call(ctx, id); c.Disposition != "resolved" || c.Notes != "" {
		t.Fatalf("a save after the window changed the call: %+v", c.WrapUp)
	}
}
