package agentdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
)

func TestTransferRingsTheNamedAgentAndRingsBack(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	now := time.Now()
	for _, id := range []string{"ann", "bob", "cat", "dan", "eve", "fay"} {
		if _, _, err := r.PutAgent(ctx, id, id, NewAgentToken(id), true); err != nil {
			t.Fatal(err)
		}
	}
	ann := login(t, r, "ann", "a", Available, now.Add(-time.Hour))
	login(t, r, "bob", "b", Available, now) // idle the shortest: the queue would not pick bob
	login(t, r, "cat", "c", Away, now)
	login(t, r, "dan", "d", Busy, now)
	eve := login(t, r, "eve", "e", Busy, now)
	eve.State, eve.Until = WrapUp, now.Add(time.Minute)
	if err := r.SetState(ctx, eve.Session, Busy, "", eve, testTTL); err != nil {
		t.Fatal(err)
	}
	login(t, r, "fay", "f", Available, now.Add(-time.Minute))

	ring := 10 * time.Second
	if o, _ := r.Route(ctx, Offer{Call: "CL1", Direction: call.Inbound, Holder: "h"}, ring, time.Minute); o.Agent != "ann" {
		t.Fatalf("route: %+v", o)
	}
	if _, err := r.TransferOffer(ctx, "CL1", "ann", "bob", ring); !errors.Is(err, ErrOfferGone) {
		t.Fatalf("transfer of a call ann has not answered: %v", err)
	}
	if err := r.AnswerOffer(ctx, "CL1", "ann", ann.Session); err != nil {
		t.Fatal(err)
	}
	// fay is reserved for another call.
	if o, _ := r.Route(ctx, Offer{Call: "CL2", Direction: call.Inbound, Holder: "h"}, ring, time.Minute); o.Agent != "fay" {
		t.Fatalf("route CL2: %+v", o)
	}

	for _, tt := range []struct {
		from, to string
		want     error
	}{
		{"ann", "zed", ErrUnknownAgent},
		{"ann", "../x", ErrUnknownAgent},
		{"ann", "ann", ErrSameAgent},
		{"bob", "cat", ErrOfferGone}, // not bob's call
		{"", "bob", ErrOfferGone},
		{"ann", "cat", ErrAgentAway},
		{"ann", "dan", ErrAgentBusy},
		{"ann", "eve", ErrAgentAway}, // still wrapping up
		{"ann", "fay", ErrAgentRinging},
	} {
		if _, err := r.TransferOffer(ctx, "CL1", tt.from, tt.to, ring); !errors.Is(err, tt.want) {
			t.Errorf("transfer %s -> %s: %v, want %v", tt.from, tt.to, err, tt.want)
		}
	}
	if _, _, err := r.PutAgent(ctx, "gus", "gus", NewAgentToken("gus"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.TransferOffer(ctx, "CL1", "ann", "gus", ring); !errors.Is(err, ErrAgentOffline) {
		t.Errorf("transfer to an agent never signed in: %v", err)
	}

	o, err := r.TransferOffer(ctx, "CL1", "ann", "bob", ring)
	if err != nil || o.State != OfferRinging || o.Agent != "bob" || o.AgentInstance != "b" || o.AgentURL != "http://b" || o.Holder != "a" { // the media stays with ann's instance
		t.Fatalf("transfer to bob: %+v %v", o, err)
	}
	if ps, _ := r.Presences(ctx, []string{"bob"}); ps[0].Ringing != "CL1" {
		t.Fatalf("bob does not ring: %+v", ps[0])
	}
	// bob lets it ring out: back to the queue, and then to ann, whose session has not yet
	// recorded her wrap-up: she is still busy with this very call.
	if st, err := r.WithdrawOffer(ctx, "CL1", "bob"); err != nil || st != OfferQueued {
		t.Fatalf("withdraw: %v %v", st, err)
	}
	if _, err := r.RingBack(ctx, "CL1", "dan", ring); !errors.Is(err, ErrAgentBusy) {
		t.Fatalf("ring-back to an agent busy with another call: %v", err)
	}
	if o, err := r.RingBack(ctx, "CL1", "ann", ring); err != nil || o.Agent != "ann" {
		t.Fatalf("ring-back to ann, busy with the call: %+v %v", o, err)
	}
	// She lets that ring out too, and is rung back again while wrapping up.
	if st, err := r.WithdrawOffer(ctx, "CL1", "ann"); err != nil || st != OfferQueued {
		t.Fatalf("withdraw: %v %v", st, err)
	}
	ann.State, ann.Call, ann.Until = WrapUp, "CL1", now.Add(time.Minute)
	if err := r.SetState(ctx, ann.Session, Busy, "CL1", ann, testTTL); err != nil {
		t.Fatal(err)
	}
	o, err = r.RingBack(ctx, "CL1", "ann", ring)
	if err != nil || o.State != OfferRinging || o.Agent != "ann" {
		t.Fatalf("ring-back: %+v %v", o, err)
	}
	if _, err := r.RingBack(ctx, "CL1", "ann", ring); !errors.Is(err, ErrOfferGone) {
		t.Fatalf("ring-back of a call no longer queued: %v", err)
	}
	if err := r.AnswerOffer(ctx, "CL1", "ann", ann.Session); err != nil {
		t.Fatalf("ann takes the call back: %v", err)
	}
}
