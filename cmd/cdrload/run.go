package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard/switchboard/call"
	"github.com/switchboard/switchboard/cmd/switchboard/api"
	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
)

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	records := fs.Int("records", 100_000, "call-detail records to store, then export")
	format := fs.String("format", "csv", "export format: csv or json")
	redisURL := fs.String("redis", "", "REDIS_URL to fill; empty: start a redis-server from PATH (not durable), removed at the end")
	workers := fs.Int("workers", 16, "concurrent writers while filling")
	wrapEvery := fs.Int("wrapup-every", 10, "every Nth call is wrapped up after its end (an entry of its own the export folds in); 0: none")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *redisURL == "" {
		p, err := redistest.StartProcess(false)
		if err != nil {
			return err
		}
		defer p.Close()
		*redisURL = p.URL()
	}
	wrapped := 0
	if *wrapEvery > 0 {
		wrapped = (*records + *wrapEvery - 1) / *wrapEvery
	}
	var b [6]byte
	rand.Read(b[:])
	ns := "cdrload-" + hex.EncodeToString(b[:])
	st, err := store.Open(ctx, store.Options{URL: *redisURL, Namespace: ns, CDRLimit: int64(*records) + int64(wrapped) + 1000, // room for every record and wrap-up entry
		OpTimeout: 10 * time.Second}, // a busy machine while filling must not fail the run
		slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }() // the figures are printed; nothing is left to lose

	start := time.Now()
	if err := fill(ctx, st, *records, *workers, *wrapEvery); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(stdout, "stored %d calls (%d events, %d wrapped up after their end) in namespace %s in %v\n",
		*records, 2**records, wrapped, ns, time.Since(start).Round(time.Millisecond))

	url, stop, err := serve(st)
	if err != nil {
		return err
	}
	defer stop()
	m, err := measure(ctx, url+"/api/admin/cdr?format="+*format)
	if err != nil {
		return err
	}
	want := *records + 1 // the CSV's header
	if *format == "json" {
		want++ // "[" and "]" on lines of their own
	}
	if m.lines != want {
		return fmt.Errorf("the export had %d lines, want %d", m.lines, want)
	}
	_, _ = fmt.Fprintf(stdout, "exported %d records as %s: %.1f MB in %v (%.0f records/s)\n", *records, *format,
		float64(m.bytes)/1e6, m.took.Round(time.Millisecond), float64(*records)/m.took.Seconds())
	_, _ = fmt.Fprintf(stdout, "heap in use: %.1f MB before, peak %.1f MB during (+%.1f MB); resident: %.1f MB before, peak %.1f MB during (+%.1f MB)\n",
		mb(m.heapBefore), mb(m.heapPeak), mb(m.heapPeak-m.heapBefore), mb(m.rssBefore), mb(m.rssPeak), mb(m.rssPeak-m.rssBefore))
	_, _ = fmt.Fprintf(stdout, "machine: %d CPUs (GOMAXPROCS %d), %s, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), cpuModel(), runtime.Version())
	return nil
}

func mb(n uint64) float64 { return float64(int64(n)) / (1 << 20) }

// fill stores n whole calls, each created then completed, so the apply script writes one
// call-detail record per call exactly as in production.
func fill(ctx context.Context, st *store.Redis, n, workers, wrapEvery int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	states := []call.State{call.Completed, call.Completed, call.Completed, call.NoAnswer, call.Busy, call.Failed}
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				id := store.NewCallID()
				for _, e := range []call.Event{
					{ID: id + ":q", CallID: id, State: call.Queued, Direction: call.Outbound, From: "+15550100",
						To: fmt.Sprintf("+1555%07d", i), Agent: "agent" + strconv.Itoa(i%50), Carrier: "primary"},
					{ID: id + ":end", CallID: id, State: states[i%len(states)], Carrier: "primary"},
				} {
					if _, err := st.Apply(ctx, e); err != nil {
						errs <- err
						return
					}
				}
				if wrapEvery > 0 && i%wrapEvery == 0 {
					w := call.WrapUp{Notes: "called back about the refund", Disposition: "follow-up",
						WrappedUpAt: time.Now(), WrappedUpBy: "agent:agent" + strconv.Itoa(i%50)}
					if _, err := st.SaveWrapUp(ctx, id, w); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

const token = "cdrload-token"

// serve mounts the export as the server does, on a loopback port.
func serve(st *store.Redis) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	d := api.Deps{Store: st, History: st, AdminToken: token, Log: slog.New(slog.DiscardHandler)}
	e.GET("/api/admin/cdr", api.HandleCDRExport(d), api.RequireAdmin(d))
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 15 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }() // ErrServerClosed once stop runs
	return "http://" + ln.Addr().String(), func() { _ = srv.Close(); <-done }, nil
}

type measurement struct {
	took                 time.Duration
	bytes                int64
	lines                int
	heapBefore, heapPeak uint64
	rssBefore, rssPeak   uint64
}

// measure downloads url, counting bytes and lines as they arrive, while sampling the heap
// every 5 ms. The process's peak resident size is reset first (clear_refs), so VmHWM after is
// the peak during the export.
func measure(ctx context.Context, url string) (measurement, error) {
	var m measurement
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heapBefore, m.heapPeak = ms.HeapInuse, ms.HeapInuse
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // Linux: reset the peak RSS; elsewhere the peak is the process's
	m.rssBefore = procStatus("VmRSS")

	stop := make(chan struct{})
	sampled := make(chan uint64)
	go func() {
		peak := m.heapBefore
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				sampled <- peak
				return
			case <-tick.C:
				var s runtime.MemStats
				runtime.ReadMemStats(&s)
				peak = max(peak, s.HeapInuse)
			}
		}
	}()

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		defer func() { _ = resp.Body.Close() }() // read to the end already
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("export: HTTP %d", resp.StatusCode)
		} else {
			m.bytes, m.lines, err = countLines(resp.Body)
		}
	}
	m.took = time.Since(start)
	close(stop)
	m.heapPeak = <-sampled
	m.rssPeak = procStatus("VmHWM")
	return m, err
}

func countLines(r io.Reader) (int64, int, error) {
	buf := make([]byte, 64<<10)
	var n int64
	lines := 0
	for {
		k, err := r.Read(buf)
		n += int64(k)
		lines += bytes.Count(buf[:k], []byte("\n"))
		if errors.Is(err, io.EOF) {
			return n, lines, nil
		}
		if err != nil {
			return n, lines, err
		}
	}
}

// procStatus reads a size in kB from /proc/self/status, in bytes (0 where there is none).
func procStatus(field string) uint64 {
	raw, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func cpuModel() string {
	raw, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimLeft(v, " \t:"))
		}
	}
	return "unknown CPU"
}
