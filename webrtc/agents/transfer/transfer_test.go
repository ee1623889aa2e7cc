package transfer

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/held"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
)

// The desk runs no goroutine; its tests check that none is left behind either.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

// sent keeps the notices a desk sends.
type sent struct {
	mu sync.Mutex
	to []string
	n  []held.Notice
}

func (s *sent) send(instance string, n held.Notice) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.to, s.n = append(s.to, instance), append(s.n, n)
}

func newDesk(t *testing.T) (*Desk, *sent) {
	t.Helper()
	rs, err := store.Open(context.Background(), store.Options{URL: redistest.URL(t), Namespace: redistest.Namespace(t)},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	s := &sent{}
	return New(Options{Store: agentdb.New(rs), RingTimeout: time.Second, OfferTTL: time.Hour,
		Log: slog.New(slog.DiscardHandler), Send: s.send}), s
}

// TestRefusals: what a desk can refuse before it changes anything, each with the code the
// softphone and the API show, and with no notice sent.
func TestRefusals(t *testing.T) {
	d, s := newDesk(t)
	ctx := t.Context()
	for _, tt := range []struct{ to, mode, code string }{
		{"agent:bob", "loud", signal.CodeBadRequest},
		{"+15551234567", signal.TransferWarm, signal.CodeNotImplemented},
		{"bob", signal.TransferBlind, signal.CodeBadRequest},
		{"+1555", signal.TransferBlind, signal.CodeBadRequest},
		{"agent:", signal.TransferBlind, signal.CodeUnknownAgent},
		{"agent:bob", signal.TransferBlind, signal.CodeNoCall}, // no such call
		{"+15551234567", signal.TransferBlind, signal.CodeNoCall},
	} {
		var e *Error
		if err := d.Transfer(ctx, "CLnone", "ann", tt.to, tt.mode); !errors.As(err, &e) || e.Code != tt.code {
			t.Errorf("transfer to %q (%s): %v, want code %s", tt.to, tt.mode, err, tt.code)
		}
	}
	var e *Error
	if err := d.ConsultAction(ctx, "CLnone", "ann", held.ConsultComplete); !errors.As(err, &e) || e.Code != signal.CodeNoCall {
		t.Errorf("complete with no call: %v, want code %s", err, signal.CodeNoCall)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.n) != 0 {
		t.Errorf("refusals sent notices: %+v", s.n)
	}
}

// TestFromStore: the store's refusals of a transfer are the agent's codes; anything else is
// no refusal but a failure, passed on as it is.
func TestFromStore(t *testing.T) {
	for err, code := range map[error]string{
		agentdb.ErrUnknownAgent: signal.CodeUnknownAgent,
		agentdb.ErrSameAgent:    signal.CodeBadRequest,
		agentdb.ErrAgentOffline: signal.CodeTargetOffline,
		agentdb.ErrAgentBusy:    signal.CodeTargetBusy,
		agentdb.ErrAgentRinging: signal.CodeTargetBusy,
		agentdb.ErrAgentAway:    signal.CodeTargetUnavailable,
		agentdb.ErrOfferGone:    signal.CodeNoCall,
	} {
		var e *Error
		if got := fromStore(err); !errors.As(got, &e) || e.Code != code {
			t.Errorf("%v: %v, want code %s", err, got, code)
		}
	}
	boom := errors.New("redis down")
	if got := fromStore(boom); got != boom { //nolint:errorlint // the very error, passed on
		t.Errorf("a failure became %v", got)
	}
}
