package stack

// The instances' ack histograms, scraped from their /metrics across restarts and kills.

import (
	"bufio"
	"context"
	"net/http"

	"github.com/switchboard/switchboard/cmd/incidentdrill/internal/ackhist"
)

// scrapeAcks reads the ack histograms of every running instance, by route.
func (s *Stack) ScrapeAcks(ctx context.Context) map[string]ackhist.Histogram {
	out := map[string]ackhist.Histogram{}
	for _, in := range s.Instances {
		ackhist.Add(out, s.scrapeOne(ctx, in))
	}
	return out
}

// scrapeOne reads one instance's ack histograms.
func (s *Stack) scrapeOne(ctx context.Context, in *Instance) map[string]ackhist.Histogram {
	out := map[string]ackhist.Histogram{}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, in.URL()+"/metrics", nil)
	resp, err := Probe.Do(req)
	if err != nil {
		return out
	}
	defer func() { _ = resp.Body.Close() }() // scanned to its end below
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		route, le, v, ok := ackhist.ParseBucket(sc.Text())
		if !ok {
			continue
		}
		if out[route] == nil {
			out[route] = ackhist.Histogram{}
		}
		out[route][le] += v
	}
	return out
}

// retire keeps the histograms of an instance about to stop, for the whole run's sum.
func (s *Stack) retire(hs map[string]ackhist.Histogram) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired == nil {
		s.retired = map[string]ackhist.Histogram{}
	}
	ackhist.Add(s.retired, hs)
}

// runAcks is the whole run's histograms: the running instances' and their earlier lives'.
func (s *Stack) RunAcks(ctx context.Context) map[string]ackhist.Histogram {
	out := s.ScrapeAcks(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	ackhist.Add(out, s.retired)
	return out
}
