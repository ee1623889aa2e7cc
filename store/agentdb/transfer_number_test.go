package agentdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
)

// TestTransferToNumberAndBack: a call answered by ann is handed to a number on a leg whose
// offer points at the call's holder; the leg failing puts the call back in the queue, from
// which ann is rung again.
func TestTransferToNumberAndBack(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	if _, _, err := r.PutAgent(ctx, "ann", "ann", NewAgentToken("ann"), true); err != nil {
		t.Fatal(err)
	}
	ann := login(t, r, "ann", "a", Available, time.Now().Add(-time.Hour))
	ring := 10 * time.Second
	if o, _ := r.Route(ctx, Offer{Call: "CL1", Direction: call.Inbound, Holder: "h"}, ring, time.Minute); o.Agent != "ann" {
		t.Fatalf("route: %+v", o)
	}
	if _, err := r.TransferToNumber(ctx, "CL1", "ann", "CLleg", "+15551234567", time.Minute); !errors.Is(err, ErrOfferGone) {
		t.Fatalf("transfer of a call ann has not answered: %v", err)
	}
	if err := r.AnswerOffer(ctx, "CL1", "ann", ann.Session); err != nil {
		t.Fatal(err)
	}
	if _, err := r.TransferToNumber(ctx, "CL1", "bob", "CLleg", "+15551234567", time.Minute); !errors.Is(err, ErrOfferGone) {
		t.Fatalf("transfer by an agent who has not the call: %v", err)
	}
	o, err := r.TransferToNumber(ctx, "CL1", "ann", "CLleg", "+15551234567", time.Minute)
	if err != nil || o.State != OfferAnswered || o.Agent != "" || o.Number != "+15551234567" || o.NumberLeg != "CLleg" || o.TransferredBy != "ann" {
		t.Fatalf("after the transfer: %+v, %v", o, err)
	}
	leg, err := r.Offer(ctx, "CLleg")
	if err != nil || leg.Bridge != "CL1" || leg.Holder == "" || leg.Holder != o.Holder || leg.HolderURL != o.HolderURL || leg.To != "+15551234567" || leg.Direction != call.Outbound {
		t.Fatalf("the leg's offer: %+v, %v", leg, err)
	}
	if _, err := r.TransferToNumber(ctx, "CL1", "ann", "CLleg2", "+15551234567", time.Minute); !errors.Is(err, ErrOfferGone) {
		t.Fatalf("a second transfer of a call nobody has: %v", err)
	}
	if err := r.NumberLegFailed(ctx, "CL1", "CLother"); !errors.Is(err, ErrOfferGone) {
		t.Fatalf("another leg failing: %v", err)
	}
	if err := r.NumberLegFailed(ctx, "CL1", "CLleg"); err != nil {
		t.Fatal(err)
	}
	if o, _ := r.Offer(ctx, "CL1"); o.State != OfferQueued || o.NumberLeg != "" || o.Number != "" {
		t.Fatalf("after the leg failed: %+v", o)
	}
	if leg, _ := r.Offer(ctx, "CLleg"); leg.State != OfferEnded {
		t.Fatalf("the failed leg's offer: %+v", leg)
	}
	if w, err := r.Waiting(ctx, 10); err != nil || len(w.Calls) != 1 {
		t.Fatalf("waiting after the leg failed: %+v, %v", w, err)
	}
	if o, err := r.RingBack(ctx, "CL1", "ann", ring); err != nil || o.State != OfferRinging || o.Agent != "ann" {
		t.Fatalf("ring-back: %+v, %v", o, err)
	}
	if err := r.NumberLegFailed(ctx, "CL1", "CLleg"); !errors.Is(err, ErrOfferGone) {
		t.Fatalf("the leg failing twice: %v", err)
	}
}

// TestTransferToNumberDuringAConsult is refused: the consult is completed or canceled first.
func TestTransferToNumberDuringAConsult(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	for _, id := range []string{"ann", "bob"} {
		if _, _, err := r.PutAgent(ctx, id, id, NewAgentToken(id), true); err != nil {
			t.Fatal(err)
		}
	}
	ann := login(t, r, "ann", "a", Available, time.Now().Add(-time.Hour))
	login(t, r, "bob", "b", Available, time.Now())
	ring := 10 * time.Second
	if o, _ := r.Route(ctx, Offer{Call: "CL1", Direction: call.Inbound, Holder: "h"}, ring, time.Minute); o.Agent != "ann" {
		t.Fatalf("route: %+v", o)
	}
	if err := r.AnswerOffer(ctx, "CL1", "ann", ann.Session); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ConsultOffer(ctx, "CL1", "ann", "bob", ring); err != nil {
		t.Fatal(err)
	}
	if _, err := r.TransferToNumber(ctx, "CL1", "ann", "CLleg", "+15551234567", time.Minute); !errors.Is(err, ErrConsulting) {
		t.Fatalf("transfer to a number during a consult: %v", err)
	}
}

// TestClaimMovesANumberLegWithItsCaller: a call bridged to a number on a dead instance is
// claimed as one call (its leg's offer is not claimed of its own) and its leg's offer moves
// with it, so the leg's media is pointed at the claimer; the claimer learns the number, the
// leg, who transferred it, when, and that the far end had answered.
func TestClaimMovesANumberLegWithItsCaller(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	for _, inst := range []string{"a", "b"} {
		if _, err := r.InstanceHeartbeat(ctx, inst, "http://"+inst, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := r.PutAgent(ctx, "ann", "ann", NewAgentToken("ann"), true); err != nil {
		t.Fatal(err)
	}
	ann := login(t, r, "ann", "a", Available, time.Now().Add(-time.Hour))
	if o, _ := r.Route(ctx, Offer{Call: "CL1", Direction: call.Inbound, Holder: "a", HolderURL: "http://a"}, 10*time.Second, time.Minute); o.Agent != "ann" {
		t.Fatalf("route: %+v", o)
	}
	if err := r.AnswerOffer(ctx, "CL1", "ann", ann.Session); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	o, err := r.TransferToNumber(ctx, "CL1", "ann", "CLleg", "+15551234567", time.Minute)
	if err != nil || o.NumberAnswered || o.NumberAt.Before(before) || o.NumberAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("after the transfer: %+v, %v", o, err)
	}
	if err := r.NumberLegAnswered(ctx, "CL1", "CLother"); !errors.Is(err, ErrOfferGone) {
		t.Fatalf("another leg answered: %v", err)
	}
	if err := r.NumberLegAnswered(ctx, "CL1", "CLleg"); err != nil {
		t.Fatal(err)
	}
	if err := r.LeaveInstances(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	got, err := r.ClaimOrphans(ctx, "b", "http://b", 100)
	if err != nil || len(got) != 1 {
		t.Fatalf("claimed %+v, %v: want the caller's call alone", got, err)
	}
	c := got[0].Offer
	if c.Call != "CL1" || c.Holder != "b" || c.State != OfferAnswered || c.Agent != "" || c.NumberLeg != "CLleg" ||
		c.Number != "+15551234567" || c.TransferredBy != "ann" || !c.NumberAnswered || c.NumberAt.IsZero() {
		t.Fatalf("the claimed call: %+v", c)
	}
	leg, err := r.Offer(ctx, "CLleg")
	if err != nil || leg.Holder != "b" || leg.HolderURL != "http://b" || leg.Bridge != "CL1" || leg.State != OfferAnswered {
		t.Fatalf("the leg's offer after the claim: %+v, %v", leg, err)
	}
	if ids, _ := r.Anchored(ctx, "b"); len(ids) != 1 || ids[0] != "CL1" {
		t.Fatalf("b anchors %v: want the caller's call alone", ids)
	}
	// Back from the number (the leg failed), the call forgets it.
	if err := r.NumberLegFailed(ctx, "CL1", "CLleg"); err != nil {
		t.Fatal(err)
	}
	if o, _ := r.Offer(ctx, "CL1"); o.NumberAnswered || !o.NumberAt.IsZero() {
		t.Fatalf("after the leg failed: %+v", o)
	}
}
