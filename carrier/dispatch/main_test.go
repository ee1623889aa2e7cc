package dispatch

import (
	"context"
	"testing"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
)

// Every goroutine a test starts (subscriptions, batchers, timers, servers) must be gone when
// the package's tests end.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

func openStore(t *testing.T, ns string) *carrierdb.Store {
	t.Helper()
	return carrierdb.New(storetest.OpenTest(t, ns))
}

func openStoreURL(t *testing.T, url, ns string) *carrierdb.Store {
	t.Helper()
	return carrierdb.New(storetest.Open(t, url, ns))
}

// twilioConfig and telnyxConfig are valid carriers; tests point their APIURL at a scripted
// API.
func twilioConfig() carrier.Config {
	return carrier.Config{
		ID: "primary", Kind: carrier.Twilio, APIURL: "http://127.0.0.1:8090/",
		AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "tok-SECRET-6f1b0c2e9a",
		From: "+15550001111", Enabled: true,
	}
}

func telnyxConfig() carrier.Config {
	return carrier.Config{
		ID: "backup-1", Kind: carrier.Telnyx, APIKey: "KEY-SECRET-01977d3c5b", ConnectionID: "1494404757140276705",
		PublicKey: "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=", From: "+15550002222", Priority: 1, Weight: 3, Enabled: true,
	}
}

// telnyxDialed is Telnyx's answer to a dial it took.
const telnyxDialed = `{"data":{"call_control_id":"v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
	"call_leg_id":"2dc6fc34-f9e0-11ea-b68e-02420a0f7768","call_session_id":"2dc1b3c8-f9e0-11ea-bc5a-02420a0f7768",
	"is_alive":false,"record_type":"call"}}`

// runActions runs a's job loop until the test ends.
func runActions(t *testing.T, a *Actions) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
}
