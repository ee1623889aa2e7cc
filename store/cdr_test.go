package store

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/redistest"
)

// addCDR writes a call-detail record with a chosen stream id (ms-seq), as the apply script
// would have at that time.
func addCDR(t *testing.T, r *Redis, id string, fields ...any) {
	t.Helper()
	values := append([]any{"state", "completed", "direction", "outbound"}, fields...)
	if err := r.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: r.keys.cdr(), ID: id, Values: values}).Err(); err != nil {
		t.Fatal(err)
	}
}

func scanIDs(t *testing.T, r *Redis, q CDRQuery) []string {
	t.Helper()
	var ids []string
	if err := r.ScanCDRs(context.Background(), q, func(c CDR) error {
		ids = append(ids, c.CallID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestScanCDRsPagesAcrossTheCountBoundary: records several to a millisecond, more than one
// page of them, come back each exactly once and in order, both ways, whatever the page size.
func TestScanCDRsPagesAcrossTheCountBoundary(t *testing.T) {
	r := open(t)
	const n = 2503
	base := int64(1_700_000_000_000)
	for i := range n {
		// Three records per millisecond: pages end in the middle of a millisecond.
		addCDR(t, r, fmt.Sprintf("%d-%d", base+int64(i/3), i%3), "id", "c"+strconv.Itoa(i), "agent", "a"+strconv.Itoa(i%100))
	}
	// A small limit with a sparse filter: pages start at the limit and grow, nothing skipped.
	for _, newest := range []bool{false, true} {
		got := scanIDs(t, r, CDRQuery{Agent: "a7", Limit: 20, Newest: newest})
		if len(got) != 20 {
			t.Fatalf("limit 20 of agent a7 (newest %v): %v", newest, got)
		}
		for k, id := range got {
			want := 7 + 100*k
			if newest {
				want = 2407 - 100*k
			}
			if id != "c"+strconv.Itoa(want) {
				t.Fatalf("limit 20 of agent a7 (newest %v): record %d is %s, want c%d", newest, k, id, want)
			}
		}
	}
	for _, page := range []int64{1000, 7, 1} {
		if page == 1 {
			// One record per round trip is slow for thousands: a short range is enough.
			got := scanIDs(t, r, CDRQuery{Page: 1, From: time.UnixMilli(base), To: time.UnixMilli(base + 4)})
			if want := []string{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11"}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("page 1: %v", got)
			}
			continue
		}
		got := scanIDs(t, r, CDRQuery{Page: page})
		if len(got) != n {
			t.Fatalf("page %d: %d records, want %d", page, len(got), n)
		}
		for i, id := range got {
			if id != "c"+strconv.Itoa(i) {
				t.Fatalf("page %d: record %d is %s", page, i, id)
			}
		}
		got = scanIDs(t, r, CDRQuery{Page: page, Newest: true})
		if len(got) != n || got[0] != "c"+strconv.Itoa(n-1) || got[n-1] != "c0" {
			t.Fatalf("page %d newest first: %d records, first %s", page, len(got), got[0])
		}
	}
}

// TestScanCDRsTimeRangeIsHalfOpen: From is inclusive, To exclusive, to the millisecond, so
// [a, b) and [b, c) together are [a, c) with nothing twice.
func TestScanCDRsTimeRangeIsHalfOpen(t *testing.T) {
	r := open(t)
	base := int64(1_700_000_000_000)
	for ms := range int64(5) {
		addCDR(t, r, fmt.Sprintf("%d-0", base+ms), "id", fmt.Sprintf("a%d", ms))
		addCDR(t, r, fmt.Sprintf("%d-1", base+ms), "id", fmt.Sprintf("b%d", ms))
	}
	at := func(ms int64) time.Time { return time.UnixMilli(base + ms) }
	for _, tc := range []struct {
		q    CDRQuery
		want string
	}{
		{CDRQuery{From: at(1), To: at(3)}, "[a1 b1 a2 b2]"},
		{CDRQuery{From: at(3), To: at(5)}, "[a3 b3 a4 b4]"},
		{CDRQuery{From: at(1), To: at(3), Newest: true}, "[b2 a2 b1 a1]"},
		{CDRQuery{From: at(4)}, "[a4 b4]"},
		{CDRQuery{To: at(1)}, "[a0 b0]"},
		{CDRQuery{From: at(2), To: at(2)}, "[]"},
		{CDRQuery{From: at(1), To: at(5), Limit: 3}, "[a1 b1 a2]"},
	} {
		if got := fmt.Sprint(scanIDs(t, r, tc.q)); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.q, got, tc.want)
		}
	}
	var c CDR
	_ = r.ScanCDRs(context.Background(), CDRQuery{From: at(2), Limit: 1}, func(got CDR) error { c = got; return nil })
	if !c.RecordedAt.Equal(at(2)) {
		t.Fatalf("recorded at %v, want %v", c.RecordedAt, at(2))
	}
}

func TestScanCDRsFilters(t *testing.T) {
	r := open(t)
	addCDR(t, r, "1-1", "id", "one", "from", "+15551230001", "to", "+442071838750", "agent", "ann", "carrier", "primary")
	addCDR(t, r, "2-1", "id", "two", "from", "+15557770002", "to", "+15551230001", "agent", "bob", "carrier", "secondary",
		"attempts", "primary\tprimary: http 503 → next\nsecondary\taccepted by secondary\n")
	addCDR(t, r, "3-1", "id", "three", "state", "failed", "from", "+15559990003", "to", "+15550000000", "carrier", "secondary",
		"disposition", "sale", "notes", "call back, tuesday")
	for _, tc := range []struct {
		q    CDRQuery
		want string
	}{
		{CDRQuery{Number: "5551230001"}, "[one two]"},
		{CDRQuery{Number: "2071838"}, "[one]"},
		{CDRQuery{Agent: "bob"}, "[two]"},
		{CDRQuery{Carrier: "primary"}, "[one two]"}, // two tried primary first
		{CDRQuery{Carrier: "secondary"}, "[two three]"},
		{CDRQuery{State: call.Failed}, "[three]"},
		{CDRQuery{State: call.Completed, Carrier: "secondary"}, "[two]"},
		{CDRQuery{Agent: "nobody"}, "[]"},
	} {
		if got := fmt.Sprint(scanIDs(t, r, tc.q)); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.q, got, tc.want)
		}
	}
	var c CDR
	_ = r.ScanCDRs(context.Background(), CDRQuery{State: call.Failed}, func(got CDR) error { c = got; return nil })
	if c.Disposition != "sale" || c.Notes != "call back, tuesday" {
		t.Fatalf("wrap-up not read: %+v", c)
	}
}

// TestScanCDRsFirstPageErrorBeforeAnyRecord: with Redis gone, the scan fails before it has
// handed out anything (a streaming caller can still answer 503), and says it is unavailable.
func TestScanCDRsFirstPageErrorBeforeAnyRecord(t *testing.T) {
	srv := redistest.NewServer(t)
	r := open(t, func(o *Options) { o.URL = srv.URL(); o.OpTimeout = 300 * time.Millisecond })
	addCDR(t, r, "1-1", "id", "one")
	srv.Stop()
	called := false
	err := r.ScanCDRs(context.Background(), CDRQuery{}, func(CDR) error { called = true; return nil })
	if err == nil || called || !IsUnavailable(err) {
		t.Fatalf("err %v (unavailable: %v), fn called: %v", err, IsUnavailable(err), called)
	}
}

// TestScanCDRsFoldsWrapUps: a wrap-up saved after the call's end (an entry of its own, later
// in the stream) reaches the record in a scan, the newest save winning, in either order and
// with a time range that ends before the wrap-up's entry; one saved while the call was live
// is in the record already. The wrap-up entries are never records themselves.
func TestScanCDRsFoldsWrapUps(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	live, late, none := NewCallID(), NewCallID(), NewCallID()
	mustApply(t, r, call.Event{ID: "a", CallID: live, State: call.InProgress, Agent: "ann"})
	wLive := wrapUp("said while talking", "resolved", "agent:ann")
	if _, err := r.SaveWrapUp(ctx, live, wLive); err != nil {
		t.Fatal(err)
	}
	mustApply(t, r, call.Event{ID: "b", CallID: live, State: call.Completed})
	mustApply(t, r, call.Event{ID: "a", CallID: late, State: call.InProgress, Agent: "bob"})
	mustApply(t, r, call.Event{ID: "b", CallID: late, State: call.Completed})
	mustApply(t, r, call.Event{ID: "a", CallID: none, State: call.Completed})
	var records []CDR
	_ = r.ScanCDRs(ctx, CDRQuery{}, func(c CDR) error { records = append(records, c); return nil })
	if len(records) != 3 {
		t.Fatalf("records: %+v", records)
	}
	to := records[2].RecordedAt.Add(time.Millisecond) // before any wrap-up saved from here on

	first := wrapUp("first try", "follow-up", "agent:bob")
	if _, err := r.SaveWrapUp(ctx, late, first); err != nil {
		t.Fatal(err)
	}
	second := first
	second.Notes, second.Disposition, second.WrappedUpAt = "second thoughts", "escalated", first.WrappedUpAt.Add(time.Second)
	if _, err := r.SaveWrapUp(ctx, late, second); err != nil {
		t.Fatal(err)
	}
	for _, q := range []CDRQuery{{}, {Newest: true}, {Newest: true, Page: 1}, {To: to}, {Newest: true, To: to},
		{From: records[1].RecordedAt, To: to, Page: 1}} {
		got := map[string]call.WrapUp{}
		n := 0
		if err := r.ScanCDRs(ctx, q, func(c CDR) error { got[c.CallID] = c.WrapUp; n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if q.From.IsZero() && (n != 3 || got[live] != wLive || got[none] != (call.WrapUp{})) {
			t.Fatalf("%+v: %d records, live call's wrap-up %+v", q, n, got[live])
		}
		if got[late] != second {
			t.Fatalf("%+v: late wrap-up %+v, want the newest %+v", q, got[late], second)
		}
	}
}

// A call transferred from one agent to another ends in a record that names both, and a search
// by either agent finds it.
func TestCDROfATransferredCallNamesEveryAgent(t *testing.T) {
	r := open(t)
	id := NewCallID()
	for _, e := range []call.Event{
		{ID: "in", CallID: id, State: call.InProgress, Direction: call.Inbound, Carrier: "tw", CarrierCallID: "CA" + id},
		{ID: "ann", CallID: id, Agent: "ann"},
		{ID: "bob", CallID: id, Agent: "bob"},
		{ID: "end", CallID: id, State: call.Completed, Carrier: "tw"},
	} {
		mustApply(t, r, e)
	}
	cdrs, err := r.RecentCDRs(context.Background(), 1)
	if err != nil || len(cdrs) != 1 || cdrs[0].Agent != "ann" || fmt.Sprint(cdrs[0].Agents) != "[ann bob]" {
		t.Fatalf("the record: %+v %v", cdrs, err)
	}
	for _, a := range []string{"ann", "bob"} {
		if got := scanIDs(t, r, CDRQuery{Agent: a}); fmt.Sprint(got) != "["+id+"]" {
			t.Errorf("search by %s: %v", a, got)
		}
	}
}

// A recorded call's record says it was recorded and for how long (its parts together); an
// unrecorded one says it was not.
func TestCDRSaysWhetherAndHowLongTheCallWasRecorded(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	recorded, plain := NewCallID(), NewCallID()
	for _, id := range []string{recorded, plain} {
		mustApply(t, r, call.Event{ID: "in", CallID: id, State: call.InProgress, Direction: call.Inbound, Carrier: "tw", CarrierCallID: "CA" + id})
		mustApply(t, r, call.Event{ID: "end", CallID: id, State: call.Completed, Carrier: "tw"})
	}
	for i, ms := range []int64{61_500, 2_250} { // handed over once: two parts
		p := RecordingPart{File: fmt.Sprintf("%s_i%d.wav", recorded, i), Instance: fmt.Sprintf("i%d", i), DurationMS: ms, State: RecordingDone}
		if err := r.PutRecordingPart(ctx, recorded, p, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	check := func(how string, cdrs []CDR) {
		t.Helper()
		byID := map[string]CDR{}
		for _, c := range cdrs {
			byID[c.CallID] = c
		}
		if c := byID[recorded]; !c.Recorded || c.RecordingMS != 63_750 {
			t.Errorf("%s: the recorded call's record %+v", how, c)
		}
		if c := byID[plain]; c.CallID == "" || c.Recorded || c.RecordingMS != 0 {
			t.Errorf("%s: the plain call's record %+v", how, c)
		}
	}
	recent, err := r.RecentCDRs(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	check("RecentCDRs", recent)
	var scanned []CDR
	if err := r.ScanCDRs(ctx, CDRQuery{}, func(c CDR) error { scanned = append(scanned, c); return nil }); err != nil {
		t.Fatal(err)
	}
	check("ScanCDRs", scanned)
}
