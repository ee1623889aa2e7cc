package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard/switchboard/webhooks"
)

// A report as Debian's wrk 4.1 prints it with --latency.
const wrkReport = `Running 10s test @ http://127.0.0.1:18080
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.13ms    1.38ms  24.85ms   83.57%
    Req/Sec    15.70k     2.27k   21.87k    72.22%
  Latency Distribution
     50%    1.90ms
     75%    2.52ms
     90%    3.48ms
     99%  712.00us
  140536 requests in 9.00s, 15.01MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  15610.79
Transfer/sec:      1.67MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkReport)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 140536 || r.elapsed != 9*time.Second || r.perSecond != 15610.79 || r.p50 != 1900*time.Microsecond ||
		r.p99 != 712*time.Microsecond || r.non2xx != 7 || r.sockErrs != 3 {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parseWrk("wrk: connection refused"); err == nil {
		t.Fatal("an unreadable report parsed")
	}
}

// The replay file carries callbacks the server accepts: three tab-separated fields a line,
// each signature good for the public URL the file was written for.
func TestReplayFileVerifies(t *testing.T) {
	const token, base = "test-token", "http://127.0.0.1:18080"
	w := newWorkload(options{duration: time.Second, dupRate: 0.05, reorderRate: 0.1}, token)
	file := filepath.Join(t.TempDir(), "cb.replay")
	if err := writeReplay(file, base, w); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != len(w.items) {
		t.Fatalf("%d lines for %d callbacks", len(lines), len(w.items))
	}
	for i, line := range lines[:1000] {
		f := strings.Split(line, "\t")
		if len(f) != 3 || !strings.HasPrefix(f[0], "/webhooks/load/status") {
			t.Fatalf("line %d: %q", i, line)
		}
		if !webhooks.VerifyTwilio(token, base+f[0], []byte(f[2]), f[1]) {
			t.Fatalf("line %d does not verify: %q", i, line)
		}
	}
}
