package agents

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/store/agentdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/webrtc/agents/relay"
)

// TestRelayAnswersSayWhoHoldsTheCall: an instance that does not hold a call answers a relay
// for it 421 (it may be a new process at a dead holder's URL), which the agent's side waits
// out; the holder's own answers (the agent does not have the call; no such call) are
// refusals, which end the agent's side.
func TestRelayAnswersSayWhoHoldsTheCall(t *testing.T) {
	ns := redistest.Namespace(t)
	a, b := newTestHub(t, ns), newTestHub(t, ns)
	ctx := context.Background()
	if _, err := a.st.Route(ctx, agentdb.Offer{Call: "CLheld", Direction: call.Inbound, Holder: a.opts.Instance,
		HolderURL: a.url}, time.Second, time.Minute); err != nil {
		t.Fatal(err)
	}
	dial := func(url, callID string) error {
		p, err := relay.Dial(ctx, url, callID, "ann", relay.Token([]byte("relay secret"), callID, "ann"), nil)
		if err == nil {
			p.Close()
		}
		return err
	}
	var refused *relay.RefusedError
	if err := dial(b.url, "CLheld"); err == nil || errors.As(err, &refused) {
		t.Errorf("a relay to the instance that does not hold the call: %v, want a wait (421), not a refusal", err)
	}
	if err := dial(a.url, "CLheld"); !errors.As(err, &refused) {
		t.Errorf("a relay for a call the agent does not have, at its holder: %v, want a refusal", err)
	}
	if err := dial(a.url, "CLnone"); !errors.As(err, &refused) {
		t.Errorf("a relay for no such call: %v, want a refusal", err)
	}
}
