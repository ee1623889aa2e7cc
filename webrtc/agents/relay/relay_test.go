package relay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTokenNamesTheCallAndTheAgent(t *testing.T) {
	secret := []byte("s")
	tok := Token(secret, "CL1", "ann")
	if !TokenValid(secret, "CL1", "ann", tok) {
		t.Fatal("own token refused")
	}
	for _, c := range [][4]string{{"s", "CL2", "ann", tok}, {"s", "CL1", "bob", tok}, {"t", "CL1", "ann", tok}, {"s", "CL1", "ann", ""}} {
		if TokenValid([]byte(c[0]), c[1], c[2], c[3]) {
			t.Errorf("token accepted for %v", c[:3])
		}
	}
}

// sink records what the holder sent.
type sink struct{ got chan string }

func (s sink) Audio(ulaw []byte)   { s.got <- "audio " + string(ulaw) }
func (s sink) DTMF(digit string)   { s.got <- "dtmf " + digit }
func (s sink) Ended(reason string) { s.got <- "ended " + reason }
func (s sink) Moved()              { s.got <- "moved" }

// TestFramesCrossBothWays: the agent's audio and hang-up reach the holder, the holder's
// audio, digit and ending reach the agent, in order; a holder that refuses is a RefusedError.
func TestFramesCrossBothWays(t *testing.T) {
	fromAgent := make(chan string, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("agent") != "ann" || r.URL.Path != "/internal/media/CL1" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		c, err := Accept(w, r)
		if err != nil {
			return
		}
		defer c.Close()
		c.Audio([]byte("x"))
		c.DTMF("5")
		c.Serve(func(ulaw []byte) { fromAgent <- "audio " + string(ulaw) }, func() {
			fromAgent <- "hangup"
			c.Ended("agent-hangup")
		})
	}))
	defer srv.Close()
	ctx := context.Background()

	var refused *RefusedError
	if _, err := Dial(ctx, srv.URL, "CL1", "bob", "t", sink{}); !errors.As(err, &refused) {
		t.Fatalf("refusal: %v", err)
	}
	s := sink{got: make(chan string, 8)}
	p, err := Dial(ctx, srv.URL, "CL1", "ann", "t", s)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); p.Read() }()
	if err := p.SendAudio([]byte("y")); err != nil {
		t.Fatal(err)
	}
	p.Hangup()
	for _, want := range []string{"audio x", "dtmf 5", "ended agent-hangup"} {
		if got := next(t, s.got); got != want {
			t.Fatalf("agent got %q, want %q", got, want)
		}
	}
	for _, want := range []string{"audio y", "hangup"} {
		if got := next(t, fromAgent); got != want {
			t.Fatalf("holder got %q, want %q", got, want)
		}
	}
	<-done
	p.Close()
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("nothing arrived")
		return ""
	}
}

// TestWhoRefuses: only the holder's own answers about the call (no such call, a bad token, the
// agent does not have it) are refusals. A 5xx comes from whatever stands before a dead holder,
// and a 421 from a process at the holder's URL that is not the call's holder (the dead one
// restarted), so for those the agent's side waits for the call instead of giving it up.
func TestWhoRefuses(t *testing.T) {
	for _, tc := range []struct {
		status  int
		refusal bool
	}{
		{http.StatusNotFound, true},
		{http.StatusForbidden, true},
		{http.StatusConflict, true},
		{http.StatusMisdirectedRequest, false},
		{http.StatusBadGateway, false},
		{http.StatusServiceUnavailable, false},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
		}))
		var refused *RefusedError
		_, err := Dial(context.Background(), srv.URL, "CL1", "ann", "t", sink{})
		srv.Close()
		if err == nil || errors.As(err, &refused) != tc.refusal {
			t.Errorf("%d: %v, want refusal %v", tc.status, err, tc.refusal)
		}
	}
}
