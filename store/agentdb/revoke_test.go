package agentdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
)

// listenNotices runs Listen for instance until the test ends and hands over its notices.
func listenNotices(t *testing.T, r *Store, instance string) <-chan store.Notice {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan store.Notice, 64)
	done := make(chan struct{})
	subscribed := make(chan struct{}, 1)
	go func() {
		defer close(done)
		r.Listen(ctx, instance, func(n store.Notice) {
			if n.Kind == store.NoticeSubscribed {
				select {
				case subscribed <- struct{}{}:
				default:
				}
				return
			}
			out <- n
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-subscribed:
	case <-time.After(5 * time.Second):
		t.Fatal("not subscribed")
	}
	return out
}

func nextRevoked(t *testing.T, ch <-chan store.Notice) store.Notice {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case n := <-ch:
			if n.Kind == store.NoticeAgentRevoked {
				return n
			}
		case <-deadline:
			t.Fatal("no revoked notice")
		}
	}
}

// TestRotationAndDeletionRevokeSessions: rotating a token tells every instance which token
// is now in force, and the old one's heartbeats fail; deleting an agent removes its record,
// token and presence, tells every instance, and a second delete is store.ErrNotFound.
func TestRotationAndDeletionRevokeSessions(t *testing.T) {
	r := open(t)
	ctx := context.Background()
	notices := listenNotices(t, r, "inst-a")

	old := NewAgentToken("ann")
	if _, _, err := r.PutAgent(ctx, "ann", "Ann", old, false); err != nil {
		t.Fatal(err)
	}
	signedIn, err := r.AuthenticateAgent(ctx, old)
	if err != nil || signedIn.TokenID == "" {
		t.Fatalf("authenticate: %+v %v", signedIn, err)
	}
	p := Presence{Agent: "ann", State: Available, Since: time.Now(), Session: "s1", Instance: "inst-a", URL: "http://a"}
	if _, err := r.Connect(ctx, p, testTTL); err != nil {
		t.Fatal(err)
	}
	if err := r.Heartbeat(ctx, "ann", "s1", signedIn.TokenID, testTTL); err != nil {
		t.Fatalf("heartbeat with the token in force: %v", err)
	}

	// A rename is not a rotation: nothing is revoked.
	if _, _, err := r.PutAgent(ctx, "ann", "Ann B.", NewAgentToken("ann"), false); err != nil {
		t.Fatal(err)
	}
	rotated, _, err := r.PutAgent(ctx, "ann", "Ann B.", NewAgentToken("ann"), true)
	if err != nil {
		t.Fatal(err)
	}
	n := nextRevoked(t, notices)
	if n.Agent != "ann" || n.TokenID == "" || n.TokenID != rotated.TokenID || n.TokenID == signedIn.TokenID {
		t.Fatalf("rotation notice %+v; new token %q, old %q", n, rotated.TokenID, signedIn.TokenID)
	}
	if err := r.Heartbeat(ctx, "ann", "s1", signedIn.TokenID, testTTL); !errors.Is(err, ErrRevoked) {
		t.Fatalf("heartbeat with the old token: %v", err)
	}
	if err := r.Heartbeat(ctx, "ann", "s1", rotated.TokenID, testTTL); err != nil {
		t.Fatalf("heartbeat with the new token: %v", err)
	}

	if err := r.DeleteAgent(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if n := nextRevoked(t, notices); n.Agent != "ann" || n.TokenID != "" {
		t.Fatalf("deletion notice %+v", n)
	}
	if _, err := r.Agent(ctx, "ann"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted agent read: %v", err)
	}
	if got, err := r.Presence(ctx, "ann"); err != nil || got.State != Offline {
		t.Fatalf("deleted agent's presence: %+v %v", got, err)
	}
	if n, _ := r.rdb.ZScore(ctx, r.keys.idle(), "ann").Result(); n != 0 {
		t.Fatal("deleted agent still in the idle index")
	}
	if all, _ := r.Agents(ctx); len(all) != 0 {
		t.Fatalf("agents after delete: %+v", all)
	}
	if err := r.Heartbeat(ctx, "ann", "s1", rotated.TokenID, testTTL); !errors.Is(err, ErrRevoked) {
		t.Fatalf("heartbeat of a deleted agent: %v", err)
	}
	if err := r.DeleteAgent(ctx, "ann"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := r.DeleteAgent(ctx, "No Such"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("invalid id: %v", err)
	}
}
