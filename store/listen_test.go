package store

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
)

// TestListenDeliversNotices: an instance hears its own channel, the agents channel and the
// calls channel, and not another instance's channel.
func TestListenDeliversNotices(t *testing.T) {
	r := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan Notice, 16)
	done := make(chan error, 1)
	go func() { done <- r.Listen(ctx, "inst-1", func(n Notice) { got <- n }) }()
	next := func() Notice {
		t.Helper()
		select {
		case n := <-got:
			return n
		case <-time.After(5 * time.Second):
			t.Fatal("no notice")
		}
		return Notice{}
	}
	if n := next(); n.Kind != NoticeSubscribed {
		t.Fatalf("first notice: %+v", n)
	}
	r.NotifyInstance(ctx, "inst-2", []byte("not for us"))
	r.NotifyInstance(ctx, "inst-1", []byte(`{"type":"ring"}`))
	if n := next(); n.Kind != NoticeInstance || n.Payload != `{"type":"ring"}` {
		t.Fatalf("instance notice: %+v", n)
	}
	r.NotifyAgentFree(ctx, "ann")
	if n := next(); n.Kind != NoticeAgentFree || n.Payload != "ann" {
		t.Fatalf("agent notice: %+v", n)
	}
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "e1", CallID: id, State: call.Ringing, Direction: call.Outbound})
	if n := next(); n.Kind != NoticeCall || n.CallID != id || n.State != call.Ringing {
		t.Fatalf("call notice: %+v", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
