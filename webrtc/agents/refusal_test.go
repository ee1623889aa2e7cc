package agents

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/signal"
	"github.com/switchboard/switchboard/webrtc/agentsim"
)

// syncBuffer is a log destination the hub's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// What the browser sends wrong is refused with a code and a message for people; pion's (or
// any library's) words go to the log with the agent and the session, never to the browser.
func TestRefusalsTellTheBrowserACodeAndLogTheDetail(t *testing.T) {
	var logs syncBuffer
	h := newTestHub(t, "", func(o *HubOptions) {
		o.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ann := h.agent(t, "ann", 440) // signed in, with its PeerConnection up

	for _, tc := range []struct {
		send        map[string]any
		code, words string
	}{
		{map[string]any{"type": signal.TypeCandidate, "candidate": json.RawMessage(`{"candidate":"candidate:x"}`)}, signal.CodeBadRequest, "the candidate was not taken"},
		{map[string]any{"type": signal.TypeOffer, "sdp": "v=0\r\nnot an offer"}, signal.CodeMedia, "the offer was not accepted"},
	} {
		if err := ann.Send(tc.send); err != nil {
			t.Fatal(err)
		}
		m := expect(t, ann, "the refusal", func(m agentsim.SoftphoneMessage) bool { return m.Type == signal.TypeError && m.Code == tc.code })
		if m.Message != tc.words {
			t.Errorf("%v: error %q %q, want %q %q", tc.send["type"], m.Code, m.Message, tc.code, tc.words)
		}
		redistest.Eventually(t, 5*time.Second, "the refusal in the log", func() bool {
			return strings.Contains(logs.String(), "code="+tc.code)
		})
	}
	line := ""
	for l := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(l, "request refused") && strings.Contains(l, "code="+signal.CodeMedia) {
			line = l
		}
	}
	if !strings.Contains(line, "agent=ann") || !strings.Contains(line, "session=") || !strings.Contains(line, "err=") {
		t.Errorf("the refusal's log line lacks the agent, the session or the detail: %q", line)
	}
}
