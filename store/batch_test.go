package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/switchboard/switchboard/call"
)

// sendBatch applies events as one batch, as the batcher does with events that arrive
// together (one script call on a single node), and returns each event's reply.
func sendBatch(r *Redis, events []call.Event, now time.Time) []*applyCall {
	batch := make([]*applyCall, len(events))
	for i, e := range events {
		batch[i] = &applyCall{call: r.keys.call(e.CallID), log: r.keys.callLog(e.CallID), args: applyArgs(e, now)}
	}
	r.batch.send(batch)
	return batch
}

// TestBatchAgreesWithDomain: events of several calls, interleaved and duplicated, applied in
// one script call, each give the outcome and state call.Apply gives them in that order, and
// leave each call the history call.Apply builds: a batch is the same as its events one by one.
func TestBatchAgreesWithDomain(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	all := append([]call.State{call.Unknown}, call.States...)
	rapid.Check(t, func(t *rapid.T) {
		ids := []string{NewCallID(), NewCallID(), NewCallID()}
		// Each call's own parties and carrier, which some of its events carry: a batch must
		// fill each record from its own event, not from another in the batch.
		parties := map[string]call.Event{}
		for i, id := range ids {
			parties[id] = call.Event{Carrier: fmt.Sprintf("carrier%d", i), CarrierCallID: fmt.Sprintf("CA%d%s", i, id),
				Direction: []call.Direction{call.Inbound, call.Outbound}[i%2], From: fmt.Sprintf("+1555000%04d", i),
				To: fmt.Sprintf("+1555999%04d", i), Agent: fmt.Sprintf("agent%d", i)}
		}
		var events []call.Event
		for i := range rapid.IntRange(1, 12).Draw(t, "events") {
			s := rapid.SampledFrom(all).Draw(t, fmt.Sprintf("state%d", i))
			e := call.Event{ID: fmt.Sprintf("e%d", i), CallID: rapid.SampledFrom(ids).Draw(t, fmt.Sprintf("call%d", i)), State: s,
				Source: call.SourceCallback}
			if rapid.Bool().Draw(t, fmt.Sprintf("parties%d", i)) {
				p := parties[e.CallID]
				e.Carrier, e.CarrierCallID, e.Direction, e.From, e.To = p.Carrier, p.CarrierCallID, p.Direction, p.From, p.To
				// The call's first agent, or a second one (a transfer's target, a consulted agent).
				e.Agent = rapid.SampledFrom([]string{"", p.Agent, p.Agent + "-b"}).Draw(t, fmt.Sprintf("agent%d", i))
			}
			if rapid.Bool().Draw(t, fmt.Sprintf("timed%d", i)) {
				e.At = time.UnixMilli(1_700_000_000_000 + 1000*int64(rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("at%d", i))))
			}
			if s == call.Completed && rapid.Bool().Draw(t, fmt.Sprintf("ending%d", i)) {
				e.Unanswered = rapid.SampledFrom([]call.State{call.Canceled, call.NoAnswer, call.Failed}).Draw(t, fmt.Sprintf("unanswered%d", i))
			}
			events = append(events, e)
		}
		deliveries := make([]call.Event, rapid.IntRange(len(events), 2*len(events)).Draw(t, "deliveries"))
		for i := range deliveries {
			deliveries[i] = rapid.SampledFrom(events).Draw(t, fmt.Sprintf("pick%d", i))
		}
		models := map[string]call.Call{}
		now := time.Now()
		for i, c := range sendBatch(r, deliveries, now) {
			e := deliveries[i]
			var want call.Outcome
			models[e.CallID], want = call.Apply(models[e.CallID], e, now)
			if c.err != nil {
				t.Fatalf("delivery %d: %v", i, c.err)
			}
			got, state := call.Outcome(c.res[0].(int64)), c.res[1].(string)
			if got != want || state != models[e.CallID].State.String() && models[e.CallID].State != call.Unknown {
				t.Fatalf("delivery %d of %s/%s/%v: batch %v %s, domain %v %v", i, e.CallID, e.ID, e.State, got, state, want, models[e.CallID].State)
			}
		}
		for id, model := range models {
			stored, err := r.Call(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Carrier != model.Carrier || stored.CarrierCallID != model.CarrierCallID || stored.Direction != model.Direction ||
				stored.From != model.From || stored.To != model.To || stored.Agent != model.Agent || !slices.Equal(stored.Agents, model.Agents) {
				t.Fatalf("call %s: store %s %s %v %s>%s %s %v, domain %s %s %v %s>%s %s %v", id,
					stored.Carrier, stored.CarrierCallID, stored.Direction, stored.From, stored.To, stored.Agent, stored.Agents,
					model.Carrier, model.CarrierCallID, model.Direction, model.From, model.To, model.Agent, model.Agents)
			}
			if stored.State != model.State || len(stored.History) != len(model.History) {
				t.Fatalf("call %s: store %v with %d entries, domain %v with %d", id, stored.State, len(stored.History), model.State, len(model.History))
			}
			for i := range stored.History {
				s, m := stored.History[i], model.History[i]
				if s.EventID != m.EventID || s.State != m.State || s.Changed != m.Changed || s.Detail != m.Detail || s.Source != m.Source {
					t.Fatalf("call %s history[%d]: store %+v, domain %+v", id, i, s, m)
				}
			}
		}
	})
}

// TestBatchEventFailsAlone: an event Redis cannot store (its log key holds the wrong type)
// gets its own error, and the events around it in the same script call are stored.
func TestBatchEventFailsAlone(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	good1, bad, good2 := NewCallID(), NewCallID(), NewCallID()
	if err := r.rdb.Set(ctx, r.keys.callLog(bad), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	replies := sendBatch(r, []call.Event{
		{ID: "a", CallID: good1, State: call.Ringing},
		{ID: "b", CallID: bad, State: call.Ringing},
		{ID: "c", CallID: good2, State: call.Ringing},
	}, time.Now())
	if replies[1].err == nil || !strings.Contains(replies[1].err.Error(), "WRONGTYPE") {
		t.Fatalf("the bad event: %v %v", replies[1].res, replies[1].err)
	}
	for _, i := range []int{0, 2} {
		if replies[i].err != nil {
			t.Fatalf("event %d failed with its neighbour: %v", i, replies[i].err)
		}
	}
	for _, id := range []string{good1, good2} {
		if c, err := r.Call(ctx, id); err != nil || c.State != call.Ringing || len(c.History) != 1 {
			t.Fatalf("call %s: %+v %v", id, c, err)
		}
	}
}

// TestDuplicateOfAnOrphanSaysSo: the store tells a duplicate of an abandoned attempt's event
// from any other duplicate, so the webhooks can store the orphan's hang-up again without
// another round trip.
func TestDuplicateOfAnOrphanSaysSo(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	id := NewCallID()
	mustApply(t, r, call.Event{ID: "q", CallID: id, State: call.Queued, Direction: call.Outbound})
	mustClaim(t, r, id, "tw", 1)
	mustClaim(t, r, id, "tx", 2)
	if _, err := r.AbandonAttempt(ctx, id, "tw", 1); err != nil {
		t.Fatal(err)
	}
	orphan := call.Event{ID: "o", CallID: id, Carrier: "tw", CarrierCallID: "CA1", State: call.Ringing}
	live := call.Event{ID: "l", CallID: id, Carrier: "tx", CarrierCallID: "v3:1", State: call.Ringing}
	for i, want := range []struct {
		e       call.Event
		outcome call.Outcome
		orphan  bool
	}{
		{orphan, call.Orphaned, true}, {orphan, call.Duplicate, true},
		{live, call.Advanced, false}, {live, call.Duplicate, false},
	} {
		a := mustApply(t, r, want.e)
		if a.Outcome != want.outcome || a.Orphan != want.orphan {
			t.Fatalf("delivery %d: %v orphan %v, want %v orphan %v", i, a.Outcome, a.Orphan, want.outcome, want.orphan)
		}
	}
}

// TestApplyWhileTheStoreCloses: events applied while the store closes each come back, stored
// or with an unavailable error; none waits forever for a batch that no loop will send (a hub
// shutting down in a test left such an answer hanging).
func TestApplyWhileTheStoreCloses(t *testing.T) {
	// A round trip may take a minute here, so only the close can bring a waiting event back
	// within the test's deadline.
	r := open(t, func(o *Options) { o.OpTimeout = time.Minute })
	results := make(chan error, 200)
	for i := range cap(results) {
		go func() {
			_, err := r.Apply(context.Background(), call.Event{ID: fmt.Sprint(i), CallID: NewCallID(), State: call.Queued})
			results <- err
		}()
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for range cap(results) {
		select {
		case err := <-results:
			if err != nil && !IsUnavailable(err) {
				t.Errorf("an event applied as the store closed: %v, want stored or unavailable", err)
			}
		case <-deadline:
			t.Fatal("an event applied as the store closed never came back")
		}
	}
}
