package store

import (
	"context"
	"testing"

	"github.com/switchboard/switchboard/call"
)

func TestCDRCarriesAttempts(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	mustApply(t, r, call.Event{ID: id + ":queued", CallID: id, State: call.Queued, Direction: call.Outbound, To: "+15550199"})
	mustClaim(t, r, id, "primary", 1)
	mustClaim(t, r, id, "secondary", 2)
	for _, e := range []call.Event{
		{ID: AttemptEventID(id, 1), CallID: id, Carrier: "primary", Detail: "primary: http 503 → next"},
		{ID: AttemptEventID(id, 2), CallID: id, Carrier: "secondary", Detail: "accepted by secondary"},
		{ID: "x", CallID: id, State: call.Completed, Carrier: "secondary"},
	} {
		mustApply(t, r, e)
	}
	cdrs, err := r.RecentCDRs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []Attempt{{"primary", "primary: http 503 → next"}, {"secondary", "accepted by secondary"}}
	if len(cdrs) != 1 || len(cdrs[0].Attempts) != 2 || cdrs[0].Attempts[0] != want[0] || cdrs[0].Attempts[1] != want[1] {
		t.Fatalf("cdr: %+v", cdrs)
	}
}
