package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/switchboard/switchboard/call"
)

// TestOwnershipAgreesWithDomain extends TestScriptAgreesWithDomain to carriers: random
// claims, abandoned attempts and events from owners, orphans and strangers, in any order.
// The script and call.Apply must agree on every outcome, the record and the history.
func TestOwnershipAgreesWithDomain(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	carriers := []string{"", "a", "b", "x"}
	states := append([]call.State{call.Unknown}, call.States...)
	rapid.Check(t, func(t *rapid.T) {
		id := NewCallID()
		var model call.Call
		placed := call.Event{ID: "placed", CallID: id, State: call.Queued, Direction: call.Outbound}
		model, _ = call.Apply(model, placed, time.Now())
		if _, err := r.Apply(ctx, placed); err != nil {
			t.Fatal(err)
		}
		for i := range rapid.IntRange(1, 12).Draw(t, "steps") {
			carrier := rapid.SampledFrom(carriers[1:]).Draw(t, fmt.Sprintf("carrier%d", i))
			switch rapid.IntRange(0, 5).Draw(t, fmt.Sprintf("op%d", i)) {
			case 0:
				n := rapid.IntRange(1, 3).Draw(t, fmt.Sprintf("attempt%d", i))
				model = model.Claim(carrier, n)
				if err := r.ClaimAttempt(ctx, id, carrier, n); err != nil {
					t.Fatal(err)
				}
			case 1:
				model = model.Abandon(carrier)
				if _, err := r.AbandonAttempt(ctx, id, carrier, model.Claims[carrier].Attempt); err != nil {
					t.Fatal(err)
				}
			default:
				e := call.Event{
					ID:      fmt.Sprintf("e%d", rapid.IntRange(0, 6).Draw(t, fmt.Sprintf("event%d", i))),
					CallID:  id,
					Carrier: rapid.SampledFrom(carriers).Draw(t, fmt.Sprintf("sender%d", i)),
					State:   rapid.SampledFrom(states).Draw(t, fmt.Sprintf("state%d", i)),
					Attempt: rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("named%d", i)),
					Detail:  rapid.SampledFrom([]string{"", "sip 200"}).Draw(t, fmt.Sprintf("detail%d", i)),
				}
				if e.Carrier != "" {
					e.CarrierCallID = "CC-" + e.Carrier + fmt.Sprint(e.Attempt)
				}
				var want call.Outcome
				model, want = call.Apply(model, e, time.Now())
				got, err := r.Apply(ctx, e)
				if want == call.Refused {
					if !errors.Is(err, ErrNotOwner) {
						t.Fatalf("step %d: %+v from a stranger: %v, want ErrNotOwner", i, e, err)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if got.Outcome != want || got.State != model.State {
					t.Fatalf("step %d: %+v: store %v %v, domain %v %v", i, e, got.Outcome, got.State, want, model.State)
				}
			}
		}
		stored, err := r.Call(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if stored.State != model.State || stored.Carrier != model.Carrier || stored.CarrierCallID != model.CarrierCallID {
			t.Fatalf("record: store %v %q %q, domain %v %q %q", stored.State, stored.Carrier, stored.CarrierCallID,
				model.State, model.Carrier, model.CarrierCallID)
		}
		sameHistory(t, stored, model, func(s, m call.Entry) bool {
			return s.EventID == m.EventID && s.State == m.State && s.Changed == m.Changed && s.Detail == m.Detail && s.Carrier == m.Carrier
		})
	})
}

func TestForeignCarrierChangesNothing(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "placed", CallID: id, State: call.Queued, Direction: call.Outbound})
	mustClaim(t, r, id, "a", 1)
	if err := r.LinkAttempt(ctx, id, "a", 1, "CA-a"); err != nil {
		t.Fatal(err)
	}
	mustApply(t, r, call.Event{ID: "ring", CallID: id, Carrier: "a", CarrierCallID: "CA-a", State: call.Ringing})
	before, _ := r.Call(ctx, id)

	if _, err := r.Apply(ctx, call.Event{ID: "end", CallID: id, Carrier: "b", CarrierCallID: "CA-b", State: call.Completed}); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("b's event for a's call: %v, want ErrNotOwner", err)
	}
	if err := r.Link(ctx, id, "b", "CA-b"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("b links a's call: %v, want ErrNotOwner", err)
	}
	// Not even the owner re-points a linked call from a webhook.
	if err := r.Link(ctx, id, "a", "CA-other"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("a re-points its call at another call id: %v, want ErrNotOwner", err)
	}
	if err := r.Link(ctx, id, "a", "CA-a"); err != nil {
		t.Fatalf("a confirms its own link: %v", err)
	}
	if err := r.CheckOwner(ctx, id, "b"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("b owns a's call: %v", err)
	}
	if err := r.CheckOwner(ctx, id, "a"); err != nil {
		t.Fatalf("a does not own its call: %v", err)
	}
	after, _ := r.Call(ctx, id)
	if after.State != before.State || after.Carrier != "a" || after.CarrierCallID != "CA-a" || len(after.History) != len(before.History) {
		t.Fatalf("a foreign carrier changed the call: before %+v, after %+v", before, after)
	}
	// b's event parked under a carrier call id a's call is linked with is dropped on link.
	ccid := "CA-late"
	id2 := NewCallID()
	mustApply(t, r, call.Event{ID: "placed", CallID: id2, State: call.Queued, Direction: call.Outbound})
	mustClaim(t, r, id2, "a", 1)
	if a := mustApply(t, r, call.Event{ID: "forged", Carrier: "b", CarrierCallID: ccid, State: call.Completed}); !a.Parked {
		t.Fatalf("not parked: %+v", a)
	}
	if err := r.LinkAttempt(ctx, id2, "a", 1, ccid); err != nil {
		t.Fatal(err)
	}
	if c, _ := r.Call(ctx, id2); c.State != call.Queued || len(c.History) != 1 {
		t.Fatalf("a parked foreign event was applied: %+v", c)
	}
}

func TestOrphanEventsKeepTheLiveRecord(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "placed", CallID: id, State: call.Queued, Direction: call.Outbound})
	mustClaim(t, r, id, "primary", 1)
	// The primary's callback beats its (late) answer, then we give up on it.
	mustApply(t, r, call.Event{ID: "early", CallID: id, Carrier: "primary", CarrierCallID: "CA-orphan", State: call.Initiated, Attempt: 1})
	orphan, err := r.AbandonAttempt(ctx, id, "primary", 1)
	if err != nil || orphan != "CA-orphan" {
		t.Fatalf("abandon: %q %v, want the early callback's call id", orphan, err)
	}
	mustClaim(t, r, id, "secondary", 2)
	if err := r.LinkAttempt(ctx, id, "secondary", 2, "CA-live"); err != nil {
		t.Fatal(err)
	}
	if err := r.LinkAttempt(ctx, id, "primary", 1, "CA-orphan"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("an abandoned attempt linked: %v", err)
	}
	mustApply(t, r, call.Event{ID: "ring", CallID: id, Carrier: "secondary", CarrierCallID: "CA-live", State: call.Ringing, Attempt: 2})
	a := mustApply(t, r, call.Event{ID: "orphan-answer", CallID: id, Carrier: "primary", CarrierCallID: "CA-orphan", State: call.InProgress, Attempt: 1})
	if a.Outcome != call.Orphaned || a.State != call.Ringing {
		t.Fatalf("orphan's answer: %+v", a)
	}
	c, _ := r.Call(ctx, id)
	last := c.History[len(c.History)-1]
	if c.State != call.Ringing || c.Carrier != "secondary" || c.CarrierCallID != "CA-live" ||
		last.Changed || last.Detail != "orphan of attempt 1" || last.Carrier != "primary" {
		t.Fatalf("record after the orphan's event: %+v, last entry %+v", c, last)
	}
	if err := r.CheckOwner(ctx, id, "primary"); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("the orphan's carrier may stream the call's media: %v", err)
	}
}
