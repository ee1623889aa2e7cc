package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
)

func claimIDs(cs []ReconcileClaim) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.CallID)
	}
	slices.Sort(ids)
	return ids
}

func TestReconcileScheduleFeedsFromTheActiveIndexAndClaimsOnce(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	a, b := NewCallID(), NewCallID()
	for _, id := range []string{a, b} {
		mustApply(t, r, call.Event{ID: id + ":placed", CallID: id, State: call.Queued})
	}
	fresh, err := r.ActiveSince(ctx, 0, 100)
	if err != nil || len(fresh) != 2 {
		t.Fatalf("active since 0: %v %v", fresh, err)
	}
	if err := r.ScheduleReconcile(ctx, time.Minute, fresh); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if cs, _ := r.ClaimReconcile(ctx, now, time.Second, 10); len(cs) != 0 {
		t.Fatalf("claimed %v before the calls were due", claimIDs(cs))
	}
	// Scheduling again (another instance) changes nothing.
	if err := r.ScheduleReconcile(ctx, 0, fresh); err != nil {
		t.Fatal(err)
	}
	later := now.Add(2 * time.Minute)
	var (
		mu  sync.Mutex
		got []string
		wg  sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			cs, err := r.ClaimReconcile(ctx, later, time.Minute, 10)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			got = append(got, claimIDs(cs)...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(got)
	want := []string{a, b}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("eight claimers took %v, want each call once: %v", got, want)
	}
	due, claimed, err := r.ReconcileBacklog(ctx, later)
	if err != nil || due != 0 || claimed != 2 {
		t.Fatalf("backlog due %d claimed %d err %v", due, claimed, err)
	}
}

func TestReconcileLeaseExpiresAndIsTakenOverWithAFence(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	if err := r.ExpediteReconcile(ctx, time.UnixMilli(1000), id); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first, err := r.ClaimReconcile(ctx, now, 10*time.Second, 10)
	if err != nil || len(first) != 1 || !first[0].Forced {
		t.Fatalf("first claim %+v %v", first, err)
	}
	if again, _ := r.ClaimReconcile(ctx, now.Add(5*time.Second), 10*time.Second, 10); len(again) != 0 {
		t.Fatalf("claimed again while the lease holds: %+v", again)
	}
	// The owner died: after its lease another instance takes the check over.
	taken, err := r.ClaimReconcile(ctx, now.Add(11*time.Second), 10*time.Second, 10)
	if err != nil || len(taken) != 1 || taken[0].CallID != id || !taken[0].Forced {
		t.Fatalf("take-over %+v %v", taken, err)
	}
	// The old owner wakes up: its settle must not undo the new owner's claim.
	if err := r.SettleReconcile(ctx, first[0], now.Add(time.Hour)); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale settle: %v, want ErrLeaseLost", err)
	}
	if err := r.SettleReconcile(ctx, taken[0], now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if cs, _ := r.ClaimReconcile(ctx, now.Add(59*time.Second), time.Second, 10); len(cs) != 0 {
		t.Fatalf("claimed before the rescheduled time: %+v", cs)
	}
	cs, _ := r.ClaimReconcile(ctx, now.Add(61*time.Second), time.Second, 10)
	if len(cs) != 1 || cs[0].Forced {
		t.Fatalf("rescheduled claim %+v: want one, no longer forced", cs)
	}
	if err := r.SettleReconcile(ctx, cs[0], time.Time{}); err != nil {
		t.Fatal(err)
	}
	if cs, _ := r.ClaimReconcile(ctx, now.Add(time.Hour), time.Second, 10); len(cs) != 0 {
		t.Fatalf("a dropped check came back: %+v", cs)
	}
}

func TestReconcileSweepAndHeads(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "p", CallID: id, State: call.Ringing, Carrier: "tw", CarrierCallID: "CA9"})
	if err := r.SweepReconcile(ctx, 0); err != nil {
		t.Fatal(err)
	}
	cs, err := r.ClaimReconcile(ctx, time.Now().Add(time.Second), time.Second, 10)
	if err != nil || len(cs) != 1 || cs[0].CallID != id || cs[0].Forced {
		t.Fatalf("claims after sweep %+v %v", cs, err)
	}
	heads, err := r.CallHeads(ctx, []string{id, "CLgone"})
	if err != nil {
		t.Fatal(err)
	}
	h := heads[0]
	if !h.Found || h.State != call.Ringing || h.Carrier != "tw" || h.CarrierCallID != "CA9" || h.UpdatedAt.IsZero() || heads[1].Found {
		t.Fatalf("heads %+v", heads)
	}
	// A claimed check is not scheduled a second time by a sweep.
	if err := r.SweepReconcile(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if cs, _ := r.ClaimReconcile(ctx, time.Now().Add(time.Second), time.Second, 10); len(cs) != 0 {
		t.Fatalf("sweep scheduled a claimed call again: %+v", cs)
	}
}

// TestReconcileOnRedisCluster runs the schedule's scripts on a real Redis Cluster: the calls
// spread over every node, the schedule's keys share one slot.
func TestReconcileOnRedisCluster(t *testing.T) {
	r := openCluster(t)
	ctx := context.Background()
	var ids []string
	for i := range 20 {
		id := NewCallID()
		ids = append(ids, id)
		mustApply(t, r, call.Event{ID: "q", CallID: id, State: call.Ringing, Carrier: "tw", CarrierCallID: fmt.Sprint("CA", i)})
	}
	if err := r.SweepReconcile(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.ExpediteReconcile(ctx, time.Now(), ids[0]); err != nil {
		t.Fatal(err)
	}
	claims, err := r.ClaimReconcile(ctx, time.Now().Add(time.Second), time.Minute, 100)
	if err != nil || len(claims) != 20 {
		t.Fatalf("claimed %d: %v", len(claims), err)
	}
	heads, err := r.CallHeads(ctx, claimIDs(claims))
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range heads {
		if !h.Found || h.State != call.Ringing || h.Carrier != "tw" {
			t.Fatalf("head %d: %+v", i, h)
		}
	}
	for _, c := range claims {
		if err := r.SettleReconcile(ctx, c, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if due, claimed, err := r.ReconcileBacklog(ctx, time.Now().Add(time.Hour)); err != nil || due != 0 || claimed != 0 {
		t.Fatalf("backlog after settling: %d due, %d claimed, %v", due, claimed, err)
	}
}
