package rig

import (
	"context"
	"net"
	"os"
	"testing"
	"time"
)

func TestFreeAddrCanBeListenedOn(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	l.Close()
}

func TestWaitFor(t *testing.T) {
	n := 0
	if err := WaitFor(context.Background(), time.Second, func() bool { n++; return n == 3 }); err != nil || n != 3 {
		t.Fatalf("WaitFor: %v after %d polls", err, n)
	}
	if err := WaitFor(context.Background(), 50*time.Millisecond, func() bool { return false }); err == nil {
		t.Fatal("WaitFor of what never happens returned nil")
	}
}

func TestCPUTimeGrows(t *testing.T) {
	before := CPUTime(os.Getpid())
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
	}
	if after := CPUTime(os.Getpid()); after <= before {
		t.Fatalf("CPU time %v after 100 ms of spinning, %v before", after, before)
	}
	if CPUTime(0) != 0 {
		t.Fatal("pid 0 has a CPU time")
	}
}
