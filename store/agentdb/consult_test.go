package agentdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
)

func TestConsultRingsAnswersAndCompletes(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	for _, id := range []string{"ann", "bob", "cat"} {
		if _, _, err := r.PutAgent(ctx, id, id, NewAgentToken(id), true); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	ann := login(t, r, "ann", "a", Available, now.Add(-time.Hour))
	bob := login(t, r, "bob", "b", Available, now)
	login(t, r, "cat", "c", Available, now)
	ring := 10 * time.Second
	if o, _ := r.Route(ctx, Offer{Call: "CL1", Direction: call.Inbound, Holder: "h"}, ring, time.Minute); o.Agent != "ann" {
		t.Fatalf("route: %+v", o)
	}
	if _, err := r.ConsultOffer(ctx, "CL1", "ann", "bob", ring); !errors.Is(err, ErrOfferGone) {
		t.Fatalf("consult on a call not answered: %v", err)
	}
	if err := r.AnswerOffer(ctx, "CL1", "ann", ann.Session); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ConsultOffer(ctx, "CL1", "ann", "zed", ring); !errors.Is(err, ErrUnknownAgent) {
		t.Fatalf("unknown agent: %v", err)
	}
	o, err := r.ConsultOffer(ctx, "CL1", "ann", "bob", ring)
	if err != nil || o.Consult != "bob" || o.ConsultInstance != "b" || o.Agent != "ann" || o.State != OfferAnswered {
		t.Fatalf("consult: %+v %v", o, err)
	}
	if _, err := r.ConsultOffer(ctx, "CL1", "ann", "cat", ring); !errors.Is(err, ErrConsulting) {
		t.Fatalf("a second consult: %v", err)
	}
	if err := r.CompleteConsult(ctx, "CL1", "ann", "cat"); !errors.Is(err, ErrOfferGone) {
		t.Fatalf("complete to an agent not consulted: %v", err)
	}
	if err := r.AnswerConsult(ctx, "CL1", "bob", "s-other"); !errors.Is(err, ErrReplaced) {
		t.Fatalf("answer from another session: %v", err)
	}
	if err := r.AnswerConsult(ctx, "CL1", "cat", "s-cat"); !errors.Is(err, ErrOfferGone) {
		t.Fatalf("answer by an agent not consulted: %v", err)
	}
	if err := r.AnswerConsult(ctx, "CL1", "bob", bob.Session); err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Presence(ctx, "bob"); p.State != Busy || p.Call != "CL1" {
		t.Fatalf("bob consulting: %+v", p)
	}
	if err := r.CompleteConsult(ctx, "CL1", "ann", "bob"); err != nil {
		t.Fatal(err)
	}
	if o, _ := r.Offer(ctx, "CL1"); o.Agent != "bob" || o.AgentInstance != "b" || o.Consult != "" {
		t.Fatalf("after complete: %+v", o)
	}

	// bob consults cat, and ends it while it rings: cat is free again.
	if _, err := r.ConsultOffer(ctx, "CL1", "bob", "cat", ring); err != nil {
		t.Fatal(err)
	}
	if err := r.EndConsult(ctx, "CL1", "cat"); err != nil {
		t.Fatal(err)
	}
	if o, _ := r.Offer(ctx, "CL1"); o.Consult != "" {
		t.Fatalf("after end: %+v", o)
	}
	if ps, _ := r.Presences(ctx, []string{"cat"}); ps[0].Ringing != "" {
		t.Fatalf("cat still reserved: %+v", ps[0])
	}
	if _, err := r.ConsultOffer(ctx, "CL1", "bob", "cat", ring); err != nil {
		t.Fatalf("cat consulted again: %v", err)
	}
}
