package agentdb

import (
	"testing"

	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
)

// Every goroutine a test starts (subscriptions, batchers, servers) must be gone when the
// package's tests end.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }

func open(t testing.TB) *Store {
	t.Helper()
	return openURL(t, redistest.URL(t), redistest.Namespace(t))
}

// openCluster opens a store on a new three-node Redis Cluster of the test's own.
func openCluster(t testing.TB) *Store {
	t.Helper()
	return openURL(t, redistest.NewCluster(t).Addrs(), "")
}

func openURL(t testing.TB, url, ns string) *Store {
	t.Helper()
	return New(storetest.Open(t, url, ns))
}

// TestKeysAreUnchanged pins the key names: they are a deployment's data, kept from when these
// records lived in package store, and every one shares the {agents} hash tag.
func TestKeysAreUnchanged(t *testing.T) {
	k := New(openURL(t, redistest.URL(t), "sb").Redis).keys
	for got, want := range map[string]string{
		k.agentsPrefix():     "sb:{agents}:",
		k.agent("ann"):       "sb:{agents}:agent:ann",
		k.agentIDs():         "sb:{agents}:ids",
		k.presence("ann"):    "sb:{agents}:presence:ann",
		k.idle():             "sb:{agents}:idle",
		k.reservation("ann"): "sb:{agents}:res:ann",
		k.offer("CL1"):       "sb:{agents}:offer:CL1",
		k.offerTried("CL1"):  "sb:{agents}:offer:CL1:tried",
		k.instances():        "sb:{agents}:instances",
		k.instanceURLs():     "sb:{agents}:instance-urls",
		k.anchored("i1"):     "sb:{agents}:held:i1",
		k.revokedChannel():   "sb:agents:revoked",
	} {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
}
