package proxy

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (servers, health checks, copy loops) must be gone when the
// package's tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
