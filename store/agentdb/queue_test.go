package agentdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
)

// TestWaitingFollowsTheOffers: the queue index follows each offer through the scripts. A call
// routed with nobody available waits; one ringing for an agent still waits; answering or
// ending takes it out; the longest wait is the oldest offer's; an outbound call never waits.
func TestWaitingFollowsTheOffers(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	waiting := func(what string, want ...string) Waiting {
		t.Helper()
		w, err := r.Waiting(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range w.Calls {
			got = append(got, o.Call)
		}
		if len(got) != len(want) || w.Count != int64(len(want)) {
			t.Fatalf("%s: waiting %v (count %d), want %v", what, got, w.Count, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: waiting %v, want %v", what, got, want)
			}
		}
		return w
	}
	waiting("empty")
	if w, _ := r.Waiting(ctx, 10); w.Longest(time.Now()) != 0 {
		t.Fatal("an empty queue has a longest wait")
	}

	for _, id := range []string{"CL1", "CL2"} {
		if _, err := r.Route(ctx, Offer{Call: id, Direction: call.Inbound, From: "+15550001", Holder: "h"}, time.Minute, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	w := waiting("two queued, nobody available", "CL1", "CL2")
	if w.Calls[0].State != OfferQueued || w.Calls[0].From != "+15550001" {
		t.Fatalf("first waiting call %+v", w.Calls[0])
	}
	if l := w.Longest(w.Calls[0].CreatedAt.Add(3 * time.Second)); l != 3*time.Second {
		t.Fatalf("longest wait %v, want 3s", l)
	}
	// Routing a known call again does not add it twice or move it back.
	if _, err := r.Route(ctx, Offer{Call: "CL1", Direction: call.Inbound, Holder: "h"}, time.Minute, time.Minute); err != nil {
		t.Fatal(err)
	}
	waiting("routed again", "CL1", "CL2")

	p := login(t, r, "ann", "inst", Available, time.Now())
	if o, err := r.Reserve(ctx, "CL1", time.Minute); err != nil || o.State != OfferRinging {
		t.Fatalf("reserve: %+v %v", o, err)
	}
	if w := waiting("one ringing", "CL1", "CL2"); w.Calls[0].State != OfferRinging || w.Calls[0].Agent != "ann" {
		t.Fatalf("ringing call %+v", w.Calls[0])
	}
	if err := r.AnswerOffer(ctx, "CL1", "ann", p.Session); err != nil {
		t.Fatal(err)
	}
	waiting("one answered", "CL2")
	if _, err := r.EndOffer(ctx, "CL2"); err != nil {
		t.Fatal(err)
	}
	waiting("the other ended")

	// An agent's own outbound call is answered from the start: it never waits.
	login(t, r, "bob", "inst", Available, time.Now())
	if _, _, err := r.ClaimForDial(ctx, "bob", "", Offer{Call: "CL3", To: "+15550002"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	waiting("an outbound call")
}

// TestWaitingDropsLapsedOffers: an offer that expired without ending (its instance died and
// nobody adopted it) leaves the queue the next time it is read.
func TestWaitingDropsLapsedOffers(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	if _, err := r.Route(ctx, Offer{Call: "CL1", Direction: call.Inbound, Holder: "h"}, time.Minute, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Route(ctx, Offer{Call: "CL2", Direction: call.Inbound, Holder: "h"}, time.Minute, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.rdb.Del(ctx, r.keys.offer("CL1")).Err(); err != nil { // as its TTL would
		t.Fatal(err)
	}
	w, err := r.Waiting(ctx, 1)
	if err != nil || w.Count != 1 || len(w.Calls) != 1 || w.Calls[0].Call != "CL2" {
		t.Fatalf("after a lapse: %+v %v", w, err)
	}
	if n := r.rdb.ZCard(ctx, r.keys.waiting()).Val(); n != 1 {
		t.Fatalf("index holds %d entries, want 1", n)
	}
}

// TestRolesDefaultToAgentAndChange: a new agent is an agent; a record stored before roles
// existed reads as one; SetAgentRole makes a supervisor, visible to every reader, and refuses
// an unknown agent.
func TestRolesDefaultToAgentAndChange(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	token := NewAgentToken("ann")
	a, _, err := r.PutAgent(ctx, "ann", "Ann", token, false)
	if err != nil || a.Role != RoleAgent {
		t.Fatalf("new agent %+v %v", a, err)
	}
	if err := r.rdb.HDel(ctx, r.keys.agent("ann"), "role").Err(); err != nil { // as stored before roles
		t.Fatal(err)
	}
	if got, _ := r.Agent(ctx, "ann"); got.Role != RoleAgent {
		t.Fatalf("an old record reads as %v", got.Role)
	}
	if err := r.SetAgentRole(ctx, "ann", RoleSupervisor); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.AuthenticateAgent(ctx, token); got.Role != RoleSupervisor {
		t.Fatalf("authenticated as %v", got.Role)
	}
	if all, _ := r.Agents(ctx); len(all) != 1 || all[0].Role != RoleSupervisor {
		t.Fatalf("listed %+v", all)
	}
	if a, _, _ := r.PutAgent(ctx, "ann", "Ann B.", token, false); a.Role != RoleSupervisor {
		t.Fatalf("a rename changed the role to %v", a.Role)
	}
	if err := r.SetAgentRole(ctx, "nobody", RoleSupervisor); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown agent: %v", err)
	}
	for name, want := range map[string]Role{"agent": RoleAgent, "supervisor": RoleSupervisor, "admin": RoleUnknown, "": RoleUnknown} {
		if got := ParseRole(name); got != want || (want != RoleUnknown && got.String() != name) {
			t.Errorf("ParseRole(%q) = %v", name, got)
		}
	}
}
