package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/redistest"
)

// TestOnRedisCluster runs the store's scripts and transactions on a real three-node Redis
// Cluster: every key one of them touches must hash to one slot, or Redis refuses it with
// CROSSSLOT. Calls spread over every node.
func TestOnRedisCluster(t *testing.T) {
	r := openCluster(t)
	ctx := context.Background()

	var ids []string
	for i := range 30 {
		id := NewCallID()
		ids = append(ids, id)
		ccid := fmt.Sprintf("CA%032x", i)
		mustApply(t, r, call.Event{ID: "q", CallID: id, State: call.Queued, Direction: call.Outbound, From: "+1", To: "+2"})
		mustClaim(t, r, id, "tw", 1)
		// A callback that beats the REST answer: parked, then applied by Link.
		if a := mustApply(t, r, call.Event{ID: "r", Carrier: "tw", CarrierCallID: ccid, State: call.Ringing, Direction: call.Outbound}); !a.Parked {
			t.Fatalf("not parked: %+v", a)
		}
		if err := r.Link(ctx, id, "tw", ccid); err != nil {
			t.Fatal(err)
		}
		mustApply(t, r, call.Event{ID: "a", Carrier: "tw", CarrierCallID: ccid, State: call.InProgress, Detail: "attempt"})
	}
	active, err := r.ActiveCalls(ctx, 100)
	if err != nil || len(active) != 30 {
		t.Fatalf("active calls on the cluster: %d %v", len(active), err)
	}
	for _, id := range ids[:10] {
		mustApply(t, r, call.Event{ID: "c", CallID: id, State: call.Completed})
	}
	got, err := r.CallByCarrierID(ctx, fmt.Sprintf("CA%032x", 3), "")
	if err != nil || got.ID != ids[3] || got.State != call.Completed || len(got.History) != 4 {
		t.Fatalf("call on the cluster: %+v %v", got, err)
	}
	if cdrs, err := r.RecentCDRs(ctx, 100); err != nil || len(cdrs) != 10 {
		t.Fatalf("CDRs on the cluster: %d %v", len(cdrs), err)
	}
	// A Telnyx hangup before its answer: the answer corrects the ending, and the correcting
	// call-detail record is written after the script as the first one is.
	fixed := NewCallID()
	mustApply(t, r, call.Event{ID: "q", CallID: fixed, State: call.Queued, Direction: call.Outbound, From: "+1", To: "+2"})
	mustApply(t, r, call.Event{ID: "h", CallID: fixed, State: call.Completed, Unanswered: call.Canceled})
	mustApply(t, r, call.Event{ID: "late", CallID: fixed, State: call.InProgress})
	cdrs, err := r.RecentCDRs(ctx, 2)
	if err != nil || len(cdrs) != 2 || cdrs[0].CallID != fixed || cdrs[0].State != call.Completed ||
		cdrs[0].Corrects != call.Canceled || cdrs[1].State != call.Canceled || !cdrs[0].EndedAt.Equal(cdrs[1].EndedAt) {
		t.Fatalf("corrected CDRs on the cluster: %+v %v", cdrs, err)
	}
	// Wrap-ups, one saved during a call and one after: each call's record carries its own.
	during, after := ids[10], ids[0]
	if _, err := r.SaveWrapUp(ctx, during, wrapUp("live", "escalated", "agent:ann")); err != nil {
		t.Fatal(err)
	}
	mustApply(t, r, call.Event{ID: "ann", CallID: during, Agent: "ann"})
	mustApply(t, r, call.Event{ID: "bob", CallID: during, Agent: "bob"}) // a transfer's target
	mustApply(t, r, call.Event{ID: "c", CallID: during, State: call.Completed})
	if _, err := r.SaveWrapUp(ctx, after, wrapUp("after", "resolved", "agent:ann")); err != nil {
		t.Fatal(err)
	}
	if c := cdrOf(t, r, during, 100); c.Notes != "live" || c.Disposition != "escalated" || fmt.Sprint(c.Agents) != "[ann bob]" {
		t.Fatalf("wrap-up during the call on the cluster: %+v", c)
	}
	if c := cdrOf(t, r, after, 100); c.Notes != "after" || c.Disposition != "resolved" {
		t.Fatalf("wrap-up after the call on the cluster: %+v", c)
	}
	inbound := mustApply(t, r, call.Event{ID: "i", Carrier: "tx", CarrierCallID: "v3:x", State: call.Initiated, Direction: call.Inbound})
	if inbound.CallID != InboundCallID("tx", "v3:x") {
		t.Fatalf("inbound on the cluster: %+v", inbound)
	}

	if err := r.Audited(ctx, Audit{Actor: "t", Action: "agent.put", Target: "ann"}); err != nil {
		t.Fatal(err)
	}
	if log, err := r.AuditLog(ctx, 10); err != nil || len(log) != 1 {
		t.Fatalf("audit on the cluster: %v %v", log, err)
	}
	watchCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := r.WatchConfig(watchCtx, func() {}); err != nil {
		t.Fatal(err)
	}
}

// openCluster opens a store on a new three-node Redis Cluster of the test's own.
func openCluster(t *testing.T) *Redis {
	t.Helper()
	cluster := redistest.NewCluster(t)
	return open(t, func(o *Options) { *o = Options{URL: cluster.Addrs()} })
}
