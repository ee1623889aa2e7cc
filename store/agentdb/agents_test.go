package agentdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
)

func TestAgentTokensAreHashedAndRotated(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	tok := NewAgentToken("ann")
	a, created, err := r.PutAgent(ctx, "ann", "Ann", tok, false)
	if err != nil || !created || a.Name != "Ann" || a.CreatedAt.IsZero() {
		t.Fatalf("create: %+v %v %v", a, created, err)
	}
	raw, _ := r.rdb.HGetAll(ctx, r.keys.agent("ann")).Result()
	for k, v := range raw {
		if strings.Contains(v, tok) || strings.Contains(v, strings.SplitN(tok, ".", 2)[1]) {
			t.Fatalf("the token is stored in field %s", k)
		}
	}
	if got, err := r.AuthenticateAgent(ctx, tok); err != nil || got.ID != "ann" {
		t.Fatalf("authenticate: %+v %v", got, err)
	}

	// Renaming keeps the token; a token made for the update is ignored.
	if _, created, err := r.PutAgent(ctx, "ann", "Ann B.", NewAgentToken("ann"), false); err != nil || created {
		t.Fatalf("rename: %v %v", created, err)
	}
	if got, err := r.AuthenticateAgent(ctx, tok); err != nil || got.Name != "Ann B." {
		t.Fatalf("after rename: %+v %v", got, err)
	}
	// Rotation replaces it.
	tok2 := NewAgentToken("ann")
	if _, _, err := r.PutAgent(ctx, "ann", "Ann B.", tok2, true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AuthenticateAgent(ctx, tok); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("old token after rotation: %v", err)
	}
	if _, err := r.AuthenticateAgent(ctx, tok2); err != nil {
		t.Fatalf("new token: %v", err)
	}

	if _, _, err := r.PutAgent(ctx, "bob", "Bob", NewAgentToken("bob"), false); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "ann", "ann.", "bob." + strings.SplitN(tok2, ".", 2)[1], "nobody.0123", "ANN." + "00", strings.Repeat("a", 300)} {
		if _, err := r.AuthenticateAgent(ctx, bad); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("token %q: %v", bad, err)
		}
	}
	if _, _, err := r.PutAgent(ctx, "Bad Id", "x", NewAgentToken("Bad Id"), false); err == nil {
		t.Error("invalid id accepted")
	}
	if _, _, err := r.PutAgent(ctx, "carl", "x", NewAgentToken("ann"), false); err == nil {
		t.Error("another agent's token accepted")
	}
	all, err := r.Agents(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "ann" || all[1].ID != "bob" {
		t.Fatalf("agents: %+v %v", all, err)
	}
	if _, err := r.Agent(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown agent: %v", err)
	}
}

const testTTL = 15 * time.Second

// login puts an agent online in state on instance inst, as its session would.
func login(t *testing.T, r *Store, agent, inst string, state Availability, since time.Time) Presence {
	t.Helper()
	p := Presence{Agent: agent, State: state, Since: since, Session: "s-" + agent, Instance: inst, URL: "http://" + inst}
	if _, err := r.Connect(context.Background(), p, testTTL); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPresenceReconnectKeepsStateAndReplacesSession(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	t0 := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	p := login(t, r, "ann", "a", Available, t0)
	got, err := r.Presence(ctx, "ann")
	if err != nil || got.State != Available || !got.Since.Equal(t0) || got.Instance != "a" || got.Session != p.Session {
		t.Fatalf("presence: %+v %v", got, err)
	}
	busy := p
	busy.State, busy.Call, busy.Since = Busy, "CL1", time.Now()
	if err := r.SetState(ctx, p.Session, Available, "", busy, testTTL); err != nil {
		t.Fatal(err)
	}
	// A stale expectation is refused with the real state.
	var conflict *StateConflict
	if err := r.SetState(ctx, p.Session, Available, "", p, testTTL); !errors.As(err, &conflict) || conflict.State != Busy || conflict.Call != "CL1" {
		t.Fatalf("stale set: %v", err)
	}

	// The agent reconnects on instance b: the call survives, the old session is out.
	again := Presence{Agent: "ann", State: Available, Since: time.Now(), Session: "s2", Instance: "b", URL: "http://b"}
	prev, err := r.Connect(ctx, again, testTTL)
	if err != nil || prev.Session != p.Session || prev.Instance != "a" || prev.State != Busy || prev.Call != "CL1" {
		t.Fatalf("reconnect: prev %+v %v", prev, err)
	}
	got, _ = r.Presence(ctx, "ann")
	if got.State != Busy || got.Call != "CL1" || got.Instance != "b" || got.Session != "s2" {
		t.Fatalf("after reconnect: %+v", got)
	}
	if err := r.Heartbeat(ctx, "ann", p.Session, "", testTTL); !errors.Is(err, ErrReplaced) {
		t.Fatalf("old session heartbeat: %v", err)
	}
	if err := r.SetState(ctx, p.Session, Busy, "CL1", p, testTTL); !errors.Is(err, ErrReplaced) {
		t.Fatalf("old session set: %v", err)
	}
	if err := r.Heartbeat(ctx, "ann", "s2", "", testTTL); err != nil {
		t.Fatal(err)
	}
	// Disconnect by a replaced session does nothing; by the owner it makes the agent offline.
	r.Disconnect(ctx, "ann", p.Session)
	if got, _ := r.Presence(ctx, "ann"); got.State != Busy {
		t.Fatalf("replaced session disconnected the agent: %+v", got)
	}
	r.Disconnect(ctx, "ann", "s2")
	if got, _ := r.Presence(ctx, "ann"); got.State != Offline {
		t.Fatalf("after logout: %+v", got)
	}
	if err := r.Heartbeat(ctx, "ann", "s2", "", testTTL); !errors.Is(err, ErrPresenceGone) {
		t.Fatalf("heartbeat after logout: %v", err)
	}
}

func TestPresenceExpiresWithoutHeartbeat(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	p := Presence{Agent: "ann", State: Available, Since: time.Now(), Session: "s", Instance: "a"}
	if _, err := r.Connect(ctx, p, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	redistest.Eventually(t, 5*time.Second, "the presence expiring", func() bool {
		got, err := r.Presence(ctx, "ann")
		if err != nil {
			t.Fatal(err)
		}
		return got.State == Offline
	})
	// An expired agent is never offered a call, even though it is still in the idle index.
	o, err := r.Route(ctx, Offer{Call: "CL1", Direction: call.Inbound, Holder: "h"}, time.Second, time.Minute)
	if err != nil || o.State != OfferQueued || o.Holder != "h" {
		t.Fatalf("route to an expired agent: %+v %v", o, err)
	}
}

func TestRoutingPicksTheLongestIdleAvailableAgent(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	now := time.Now()
	login(t, r, "ann", "a", Available, now.Add(-1*time.Minute))
	login(t, r, "bob", "b", Available, now.Add(-3*time.Minute)) // idle longest
	login(t, r, "cat", "c", Away, now.Add(-9*time.Minute))
	login(t, r, "dan", "d", Available, now.Add(-2*time.Minute))
	// eve finishes wrap-up in the future: not yet; fay's wrap-up ended long ago: she counts
	// as idle since then.
	eve := login(t, r, "eve", "e", Busy, now)
	eve.State, eve.Until = WrapUp, now.Add(time.Minute)
	if err := r.SetState(ctx, eve.Session, Busy, "", eve, testTTL); err != nil {
		t.Fatal(err)
	}
	fay := login(t, r, "fay", "f", Busy, now)
	fay.State, fay.Until = WrapUp, now.Add(-4*time.Minute)
	if err := r.SetState(ctx, fay.Session, Busy, "", fay, testTTL); err != nil {
		t.Fatal(err)
	}

	ring := 10 * time.Second
	var order []string
	for i := range 4 {
		id := fmt.Sprintf("CL%d", i)
		o, err := r.Route(ctx, Offer{Call: id, Direction: call.Inbound, From: "+1555", Holder: "x", HolderURL: "http://x"}, ring, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if o.State != OfferRinging || o.Holder != o.AgentInstance || o.HolderURL != "http://"+o.AgentInstance {
			t.Fatalf("call %s: %+v", id, o)
		}
		order = append(order, o.Agent)
	}
	if want := "fay bob dan ann"; strings.Join(order, " ") != want {
		t.Fatalf("offered to %v, want %s", order, want)
	}
	// Everybody eligible is reserved: the next call waits, its media on the routing instance.
	o, err := r.Route(ctx, Offer{Call: "CL9", Direction: call.Inbound, Holder: "x", HolderURL: "http://x"}, ring, time.Minute)
	if err != nil || o.State != OfferQueued || o.Holder != "x" || o.Agent != "" {
		t.Fatalf("fifth call: %+v %v", o, err)
	}
	if ps, _ := r.Presences(ctx, []string{"bob", "cat"}); ps[0].Ringing != "CL1" || ps[1].Ringing != "" {
		t.Fatalf("ringing: %+v", ps)
	}

	// Routing the same call again changes nothing.
	if again, _ := r.Route(ctx, Offer{Call: "CL0", Direction: call.Inbound, Holder: "y"}, ring, time.Minute); again.Agent != "fay" || again.State != OfferRinging {
		t.Fatalf("re-route: %+v", again)
	}

	// bob declines CL1: it goes back to the queue and to the next agent, never to bob again.
	if st, err := r.WithdrawOffer(ctx, "CL1", "bob"); err != nil || st != OfferQueued {
		t.Fatalf("withdraw: %v %v", st, err)
	}
	if st, _ := r.WithdrawOffer(ctx, "CL1", "bob"); st != OfferQueued {
		t.Fatalf("second withdraw: %v", st)
	}
	o, _ = r.Reserve(ctx, "CL1", ring)
	if o.State != OfferQueued {
		t.Fatalf("CL1 offered again with nobody left but bob: %+v", o)
	}
	o, _ = r.Reserve(ctx, "CL9", ring)
	if o.State != OfferRinging || o.Agent != "bob" {
		t.Fatalf("CL9 should now ring bob: %+v", o)
	}
}

func TestAnswerAndRingTimeoutRaceHasOneWinner(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	for i := range 50 {
		agent := fmt.Sprintf("a%d", i)
		p := login(t, r, agent, "inst", Available, time.Now())
		id := fmt.Sprintf("CL%d", i)
		o, err := r.Route(ctx, Offer{Call: id, Direction: call.Inbound, Holder: "h"}, 10*time.Second, time.Minute)
		if err != nil || o.Agent != agent {
			t.Fatalf("route: %+v %v", o, err)
		}
		var answered, withdrawn bool
		var wg sync.WaitGroup
		wg.Go(func() { answered = r.AnswerOffer(ctx, id, agent, p.Session) == nil })
		wg.Go(func() {
			st, _ := r.WithdrawOffer(ctx, id, agent)
			withdrawn = st == OfferQueued
		})
		wg.Wait()
		if answered == withdrawn {
			t.Fatalf("round %d: answered %v, withdrawn %v: exactly one must win", i, answered, withdrawn)
		}
		got, _ := r.Presence(ctx, agent)
		if answered && (got.State != Busy || got.Call != id) || withdrawn && got.State != Available {
			t.Fatalf("round %d: presence %+v (answered %v)", i, got, answered)
		}
		r.Disconnect(ctx, agent, p.Session)
	}
}

func TestReservationRingsOutByItself(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	p := login(t, r, "ann", "a", Available, time.Now())
	if o, _ := r.Route(ctx, Offer{Call: "CL1", Direction: call.Inbound, Holder: "h"}, 100*time.Millisecond, time.Minute); o.Agent != "ann" {
		t.Fatalf("route: %+v", o)
	}
	// The instance that should have timed the ring out died: the reservation still lapses,
	// the answer is refused, and ann may take other calls.
	redistest.Eventually(t, 5*time.Second, "the reservation lapsing", func() bool {
		o, err := r.Route(ctx, Offer{Call: "CL2", Direction: call.Inbound, Holder: "h"}, time.Second, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return o.Agent == "ann"
	})
	if err := r.AnswerOffer(ctx, "CL1", "ann", p.Session); !errors.Is(err, ErrOfferGone) {
		t.Fatalf("answer after the ring timeout: %v", err)
	}
	if err := r.AnswerOffer(ctx, "CL2", "ann", "other-session"); !errors.Is(err, ErrReplaced) {
		t.Fatalf("answer from a replaced session: %v", err)
	}
	if err := r.AnswerOffer(ctx, "CL2", "ann", p.Session); err != nil {
		t.Fatal(err)
	}
}

func TestClaimForDialAndEndOffer(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	if _, _, err := r.ClaimForDial(ctx, "ann", "", Offer{Call: "CL1", To: "+1555"}, time.Minute); !errors.Is(err, ErrAgentOffline) {
		t.Fatalf("offline agent: %v", err)
	}
	p := login(t, r, "ann", "a", Away, time.Now())
	o, prev, err := r.ClaimForDial(ctx, "ann", p.Session, Offer{Call: "CL1", To: "+1555"}, time.Minute)
	if err != nil || prev != Away || o.State != OfferAnswered || o.Agent != "ann" || o.Holder != "a" || o.HolderURL != "http://a" || o.Direction != call.Outbound {
		t.Fatalf("claim: %+v %v %v", o, prev, err)
	}
	if _, _, err := r.ClaimForDial(ctx, "ann", "", Offer{Call: "CL2", To: "+1555"}, time.Minute); !errors.Is(err, ErrAgentBusy) {
		t.Fatalf("busy agent: %v", err)
	}
	if got, _ := r.Presence(ctx, "ann"); got.State != Busy || got.Call != "CL1" {
		t.Fatalf("presence: %+v", got)
	}

	bob := login(t, r, "bob", "b", Available, time.Now())
	if o, _ := r.Route(ctx, Offer{Call: "CL3", Direction: call.Inbound, Holder: "h"}, time.Minute, time.Minute); o.Agent != "bob" {
		t.Fatalf("route: %+v", o)
	}
	if _, _, err := r.ClaimForDial(ctx, "bob", bob.Session, Offer{Call: "CL4", To: "+1555"}, time.Minute); !errors.Is(err, ErrAgentRinging) {
		t.Fatalf("ringing agent: %v", err)
	}
	// The caller hangs up while it rings: bob is free at once.
	ended, err := r.EndOffer(ctx, "CL3")
	if err != nil || ended.Agent != "bob" || ended.State != OfferRinging {
		t.Fatalf("end: %+v %v", ended, err)
	}
	if got, _ := r.Offer(ctx, "CL3"); got.State != OfferEnded {
		t.Fatalf("ended offer: %+v", got)
	}
	if _, _, err := r.ClaimForDial(ctx, "bob", bob.Session, Offer{Call: "CL4", To: "+1555"}, time.Minute); err != nil {
		t.Fatalf("bob after the call ended: %v", err)
	}
	if _, err := r.EndOffer(ctx, "CLnone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("end unknown: %v", err)
	}
}
