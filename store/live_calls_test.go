package store

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/call"
)

// TestLiveCallsSkipsEndedAndGone: LiveCalls answers what ActiveCalls does, without histories:
// live calls oldest first, ended ones and stale index entries left out.
func TestLiveCallsSkipsEndedAndGone(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	var live []string
	for i, st := range []call.State{call.Ringing, call.Completed, call.InProgress} {
		id := NewCallID()
		if _, err := r.Apply(ctx, call.Event{ID: "e" + id, CallID: id, State: call.Queued, Direction: call.Inbound,
			From: "+1555000" + string(rune('0'+i)), Carrier: "tw", CarrierCallID: "CA" + id}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Apply(ctx, call.Event{ID: "f" + id, CallID: id, State: st, Carrier: "tw", CarrierCallID: "CA" + id}); err != nil {
			t.Fatal(err)
		}
		if !st.Terminal() {
			live = append(live, id)
		}
	}
	if err := r.rdb.ZAdd(ctx, r.keys.active(), redis.Z{Score: 1, Member: "CLgone"}).Err(); err != nil { // a stale hint
		t.Fatal(err)
	}
	got, err := r.LiveCalls(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.ActiveCalls(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(live) || len(want) != len(live) {
		t.Fatalf("live calls %d, active calls %d, want %d", len(got), len(want), len(live))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].State != want[i].State || got[i].From != want[i].From ||
			got[i].Direction != call.Inbound || got[i].CreatedAt.IsZero() || len(got[i].History) != 0 {
			t.Fatalf("live call %d: %+v, want %+v without history", i, got[i], want[i])
		}
	}
}
