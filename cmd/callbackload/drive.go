package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	elapsed time.Duration
	lat     []time.Duration
	codes   map[int]int
	failed  int // transport errors
	dials   int64
}

func (r result) perSecond() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

func (r result) errors() int {
	n := r.failed
	for code, c := range r.codes {
		if code != http.StatusNoContent {
			n += c
		}
	}
	return n
}

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

func (r result) line(name string) string {
	return fmt.Sprintf("%-34s %8.0f callbacks/s  p50 %6.2f ms  p99 %6.2f ms  p99.9 %6.2f ms  errors %d  statuses %v  tcp connections %d",
		name+":", r.perSecond(), ms(r.pct(0.50)), ms(r.pct(0.99)), ms(r.pct(0.999)), r.errors(), r.codes, r.dials)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// drive sends w's callbacks to url over conns keep-alive connections for d. With rate 0 each
// connection sends its next callback as soon as the last was answered (closed loop, to find
// the throughput); with a rate the callbacks are scheduled at that rate whatever the answers
// take, and latency is measured from the scheduled time (open loop: no coordinated omission).
func drive(ctx context.Context, url string, w *workload, conns, rate int, d time.Duration) result {
	base := url[:strings.Index(url, "/webhooks/")]
	w.sign(base)
	var dials atomic.Int64
	client := &http.Client{Transport: &http.Transport{
		MaxConnsPerHost: conns, MaxIdleConnsPerHost: conns, DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var schedule chan time.Time
	if rate > 0 {
		schedule = make(chan time.Time, rate*int(d.Seconds()+1))
		go pace(ctx, schedule, rate)
	}

	var (
		mu  sync.Mutex
		all = result{codes: map[int]int{}}
		wg  sync.WaitGroup
	)
	start := time.Now()
	for range conns {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1<<16)
			codes := map[int]int{}
			failed := 0
			for ctx.Err() == nil {
				sent := time.Now()
				if schedule != nil {
					select {
					case sent = <-schedule:
					case <-ctx.Done():
						continue
					}
				}
				cb := w.take()
				req, _ := http.NewRequest(http.MethodPost, base+cb.path, bytes.NewReader(cb.body))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("X-Twilio-Signature", cb.sig)
				resp, err := client.Do(req)
				if err != nil {
					failed++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body) // only to reuse the connection; a short read costs a new one
				_ = resp.Body.Close()                 // as above
				lat = append(lat, time.Since(sent))
				codes[resp.StatusCode]++
			}
			mu.Lock()
			defer mu.Unlock()
			all.lat = append(all.lat, lat...)
			all.failed += failed
			for c, n := range codes {
				all.codes[c] += n
			}
		})
	}
	wg.Wait()
	all.elapsed = time.Since(start)
	all.dials = dials.Load()
	slices.Sort(all.lat)
	return all
}

// pace puts rate scheduled send times per second on out, in 1 ms steps.
func pace(ctx context.Context, out chan<- time.Time, rate int) {
	t0 := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			due := int(now.Sub(t0).Seconds() * float64(rate))
			for ; sent < due; sent++ {
				select {
				case out <- t0.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second))):
				default:
					return // the workers are hopelessly behind; the result shows it
				}
			}
		}
	}
}
