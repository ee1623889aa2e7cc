package carrier

import (
	"testing"

	"github.com/switchboard/switchboard/store/redistest"
)

// Every goroutine a test starts (subscriptions, batchers, timers, servers) must be gone when
// the package's tests end.
func TestMain(m *testing.M) { redistest.MainNoLeaks(m) }
