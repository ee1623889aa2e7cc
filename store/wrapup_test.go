package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/call"
)

func wrapUp(notes, disposition, by string) call.WrapUp {
	return call.WrapUp{Notes: notes, Disposition: disposition, WrappedUpAt: time.Now().Truncate(time.Millisecond).UTC(), WrappedUpBy: by}
}

// cdrOf finds call id's record among the newest n.
func cdrOf(t *testing.T, r *Redis, id string, n int64) CDR {
	t.Helper()
	cdrs, err := r.RecentCDRs(context.Background(), n)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cdrs {
		if c.CallID == id {
			return c
		}
	}
	t.Fatalf("no record of call %s among %d: %+v", id, len(cdrs), cdrs)
	return CDR{}
}

// TestWrapUpSavedAfterTheEndReachesTheRecord: the usual case, the agent wraps up after the
// call ended: the call shows it with a history entry from the agent, and the call-detail
// record (written at the end, before the wrap-up) carries it; a second save replaces it.
func TestWrapUpSavedAfterTheEndReachesTheRecord(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "a", CallID: id, State: call.InProgress, From: "+1", To: "+2", Carrier: "tw", Agent: "ann"})
	mustApply(t, r, call.Event{ID: "b", CallID: id, State: call.Completed})
	other := NewCallID() // a later call, so the wrap-up entry is not simply next to its record
	mustApply(t, r, call.Event{ID: "a", CallID: other, State: call.Completed, Carrier: "tw"})

	w := wrapUp("Wants a refund; call back Monday.\nCard ends 42.", "follow-up", "agent:ann")
	c, err := r.SaveWrapUp(ctx, id, w)
	if err != nil {
		t.Fatal(err)
	}
	if c.WrapUp != w {
		t.Fatalf("call's wrap-up %+v, want %+v", c.WrapUp, w)
	}
	last := c.History[len(c.History)-1]
	if last.Source != call.SourceAgent || !strings.Contains(last.Detail, "follow-up") || last.Changed {
		t.Fatalf("history entry %+v, want one from the agent naming the disposition", last)
	}
	if got := cdrOf(t, r, id, 10); got.WrapUp != w || got.State != call.Completed || got.From != "+1" {
		t.Fatalf("record %+v, want the wrap-up %+v", got, w)
	}
	// Asking for exactly the records there are still finds both calls, the wrap-up entry
	// not counting as one.
	if cdrs, err := r.RecentCDRs(ctx, 2); err != nil || len(cdrs) != 2 || cdrs[1].CallID != id || cdrs[1].Disposition != "follow-up" {
		t.Fatalf("two newest records: %+v %v", cdrs, err)
	}

	w2 := wrapUp("Refund done.", "resolved", "admin")
	w2.WrappedUpAt = w.WrappedUpAt.Add(time.Second)
	if _, err := r.SaveWrapUp(ctx, id, w2); err != nil {
		t.Fatal(err)
	}
	if got := cdrOf(t, r, id, 10); got.WrapUp != w2 {
		t.Fatalf("record after a second save %+v, want %+v", got.WrapUp, w2)
	}
	if c, _ := r.Call(ctx, id); c.WrapUp != w2 || c.History[len(c.History)-1].Source != call.SourceSwitchboard {
		t.Fatalf("call after a second save: %+v", c)
	}
	if got := cdrOf(t, r, other, 10); got.WrapUp != (call.WrapUp{}) {
		t.Fatalf("another call's record got a wrap-up: %+v", got)
	}
}

// TestWrapUpSavedDuringTheCallIsInTheRecord: saved while the call is live, the wrap-up is
// written into the record when the call ends.
func TestWrapUpSavedDuringTheCallIsInTheRecord(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "a", CallID: id, State: call.InProgress, Carrier: "tw", Agent: "ann"})
	w := wrapUp("", "escalated", "agent:ann")
	if _, err := r.SaveWrapUp(ctx, id, w); err != nil {
		t.Fatal(err)
	}
	if n := r.rdb.XLen(ctx, r.keys.cdr()).Val(); n != 0 {
		t.Fatalf("%d call-detail entries for a live call", n)
	}
	mustApply(t, r, call.Event{ID: "b", CallID: id, State: call.Completed})
	if got := cdrOf(t, r, id, 1); got.WrapUp != w {
		t.Fatalf("record %+v, want the wrap-up %+v", got.WrapUp, w)
	}
}

// TestWrapUpBadInputIsNotStored: no disposition, notes too long, a call that does not exist,
// and too many saves after the end are refused, and nothing of them is stored.
func TestWrapUpBadInputIsNotStored(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "a", CallID: id, State: call.Completed, Carrier: "tw"})
	for name, w := range map[string]call.WrapUp{
		"no disposition": wrapUp("hi", "", "admin"),
		"notes too long": wrapUp(strings.Repeat("é", call.MaxNotes+1), "resolved", "admin"),
		"not UTF-8":      wrapUp("\xff", "resolved", "admin"),
		"no author":      wrapUp("", "resolved", ""),
	} {
		if _, err := r.SaveWrapUp(ctx, id, w); !errors.Is(err, call.ErrWrapUp) {
			t.Errorf("%s: %v, want ErrWrapUp", name, err)
		}
	}
	if _, err := r.SaveWrapUp(ctx, NewCallID(), wrapUp("", "resolved", "admin")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown call: %v", err)
	}
	if n := r.rdb.Exists(ctx, r.keys.call("nope")).Val(); n != 0 {
		t.Fatal("a wrap-up created a call")
	}
	c, _ := r.Call(ctx, id)
	if c.WrapUp != (call.WrapUp{}) || len(c.History) != 1 {
		t.Fatalf("refused wrap-ups left %+v, history %d", c.WrapUp, len(c.History))
	}
	ok := strings.Repeat("n", call.MaxNotes) // exactly at the bound: taken
	for i := range maxLateWrapUps {
		if _, err := r.SaveWrapUp(ctx, id, wrapUp(ok, "resolved", "admin")); err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	before := r.rdb.XLen(ctx, r.keys.cdr()).Val()
	if _, err := r.SaveWrapUp(ctx, id, wrapUp("again", "spam", "admin")); !errors.Is(err, ErrWrapUpLimit) {
		t.Fatalf("save past the limit: %v", err)
	}
	if after := r.rdb.XLen(ctx, r.keys.cdr()).Val(); after != before {
		t.Fatalf("a refused save grew the record stream %d -> %d", before, after)
	}
	if c, _ := r.Call(ctx, id); c.Disposition != "resolved" {
		t.Fatalf("a refused save changed the call: %+v", c.WrapUp)
	}
}

// TestWrapUpEntryBeforeItsRecordIsFolded: a wrap-up entry older than its call's record (the
// order a save squeezed between a Cluster call's end and its record gives) still reaches
// the record; an older wrap-up never replaces a newer one.
func TestWrapUpEntryBeforeItsRecordIsFolded(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	at := time.Now().Truncate(time.Millisecond).UTC()
	add := func(values ...any) {
		t.Helper()
		if err := r.rdb.XAdd(ctx, &redis.XAddArgs{Stream: r.keys.cdr(), Values: values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	ms := func(d time.Duration) int64 { return at.Add(d).UnixMilli() }
	add("kind", "wrapup", "id", "CLa", "notes", "older", "disposition", "spam", "wrapped_up_at", ms(-time.Second), "wrapped_up_by", "agent:ann")
	add("kind", "wrapup", "id", "CLa", "notes", "newest", "disposition", "resolved", "wrapped_up_at", ms(0), "wrapped_up_by", "agent:ann")
	add("id", "CLa", "state", "completed", "ended_at", ms(-2*time.Second))
	add("id", "CLb", "state", "completed", "ended_at", ms(-2*time.Second))
	cdrs, err := r.RecentCDRs(ctx, 1) // only CLb's record is wanted: CLa's wrap-ups must not break that
	if err != nil || len(cdrs) != 1 || cdrs[0].CallID != "CLb" || cdrs[0].Disposition != "" {
		t.Fatalf("newest record: %+v %v", cdrs, err)
	}
	cdrs, err = r.RecentCDRs(ctx, 2)
	if err != nil || len(cdrs) != 2 || cdrs[1].CallID != "CLa" || cdrs[1].Notes != "newest" || cdrs[1].Disposition != "resolved" {
		t.Fatalf("records: %+v %v, want CLa's with its newest wrap-up", cdrs, err)
	}
}
