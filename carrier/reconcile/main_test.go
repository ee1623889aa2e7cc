package reconcile

import (
	"testing"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
)

// Every goroutine a test starts (subscriptions, batchers, timers, servers) must be gone when
// the package's tests end.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

// openStore is one instance's store client on the test Redis, under namespace ns.
func openStore(t *testing.T, ns string) *carrierdb.Store {
	t.Helper()
	return carrierdb.New(storetest.OpenTest(t, ns))
}

// twilioConfig is a valid twilio carrier; tests point its APIURL at their scripted API.
func twilioConfig() carrier.Config {
	return carrier.Config{
		ID: "primary", Kind: carrier.Twilio, APIURL: "http://127.0.0.1:8090/",
		AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: "tok-SECRET-6f1b0c2e9a",
		From: "+15550001111", Enabled: true,
	}
}
