package dispatch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store/redistest"
)

// slowTelnyx is a Telnyx whose first dial answers after the client's timeout, although it
// went through; it drops a repeated command_id and answers it with the same call, as Telnyx
// does within 60 s. fail makes every dial time out.
type slowTelnyx struct {
	srv      *httptest.Server
	fail     bool
	mu       sync.Mutex
	commands []string
}

func newSlowTelnyx(t *testing.T, fail bool) *slowTelnyx {
	s := &slowTelnyx{fail: fail}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cmd struct {
			CommandID string `json:"command_id"`
		}
		body, _ := io.ReadAll(r.Body) // read to the end, so the server notices the client leave
		json.Unmarshal(body, &cmd)
		s.mu.Lock()
		s.commands = append(s.commands, cmd.CommandID)
		first := len(s.commands) == 1
		s.mu.Unlock()
		if first || s.fail {
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(telnyxDialed))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *slowTelnyx) config() carrier.Config {
	c := telnyxConfig()
	c.ID, c.APIURL, c.Priority, c.RequestTimeout = "tx", s.srv.URL, 0, carrier.Duration(300*time.Millisecond)
	return c
}

func (s *slowTelnyx) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

func TestTelnyxMaybeCreatedIsResentWithTheSameCommandID(t *testing.T) {
	in := newInstance(t, redistest.Namespace(t))
	primary, secondary := newSlowTelnyx(t, false), newScripted(t, in.st, "secondary")
	in.put(t, primary.config(), secondary.config(1, nil))

	c, err := in.placer.Place(context.Background(), PlaceCall{To: nextNumber()})
	if err != nil || c.Carrier != "tx" || c.CarrierCallID == "" {
		t.Fatalf("placed %s/%s: %v", c.Carrier, c.CarrierCallID, err)
	}
	sent := primary.sent()
	if len(sent) != 2 || sent[0] != sent[1] || sent[0] != c.ID+"-1" {
		t.Fatalf("commands %q, want the same command_id twice", sent)
	}
	if n := secondary.placed.Load(); n != 0 {
		t.Fatalf("the secondary got %d requests: the resend succeeded, nothing fails over", n)
	}
}

func TestTelnyxResendsAreBoundedThenTheCallFailsOver(t *testing.T) {
	in := newInstance(t, redistest.Namespace(t))
	primary, secondary := newSlowTelnyx(t, true), newScripted(t, in.st, "secondary")
	in.put(t, primary.config(), secondary.config(1, nil))

	c, err := in.placer.Place(context.Background(), PlaceCall{To: nextNumber()})
	if err != nil || c.Carrier != "secondary" {
		t.Fatalf("placed on %q: %v", c.Carrier, err)
	}
	sent := primary.sent()
	if len(sent) != 1+maxResends {
		t.Fatalf("%d dials, want %d", len(sent), 1+maxResends)
	}
	for _, id := range sent {
		if id != c.ID+"-1" {
			t.Fatalf("command ids %q: a resend changed it", sent)
		}
	}
}
