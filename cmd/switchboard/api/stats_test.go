package api

import (
	"context"
	"log/slog"
	"net/http"
	"testing"

	"github.com/switchboard/switchboard/store/statsdb"
)

func TestStatsWindow(t *testing.T) {
	f := newFixture(t)
	if code, _, raw := f.do(t, "PUT", "/api/admin/carriers/primary", twilioCarrier("http://127.0.0.1:1", 0)); code != http.StatusCreated {
		t.Fatalf("carrier: %d %s", code, raw)
	}
	rec := statsdb.New(f.st).NewRecorder(slog.New(slog.DiscardHandler))
	for range 20 {
		rec.Callback("primary", "stored")
	}
	if err := rec.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, got, raw := f.do(t, "GET", "/api/admin/stats?window=1m", nil)
	if code != http.StatusOK || got["window"] != "1m0s" || got["buckets"] != 6.0 || got["step_s"] != 10.0 {
		t.Fatalf("stats: %d %s", code, raw)
	}
	series := got["callbacks"].([]any)
	if len(series) != 1 {
		t.Fatalf("callbacks: %s", raw)
	}
	s := series[0].(map[string]any)
	values := s["values"].([]any)
	if s["carrier"] != "primary" || s["outcome"] != "stored" || len(values) != 6 {
		t.Fatalf("series: %v", s)
	}
	// Counted in the current bucket, unless the flush and the read straddled a bucket's end.
	if values[5] != 2.0 && values[4] != 2.0 {
		t.Fatalf("rate: %v", values)
	}
	now := got["breakers_now"].([]any)
	if len(now) != 1 || now[0].(map[string]any)["carrier"] != "primary" || now[0].(map[string]any)["state"] != "closed" {
		t.Fatalf("breakers now: %s", raw)
	}
	if code, _, _ := f.do(t, "GET", "/api/admin/stats", nil); code != http.StatusOK {
		t.Fatalf("default window: %d", code)
	}
	for _, bad := range []string{"2h", "1s", "soon"} {
		if code, got, raw := f.do(t, "GET", "/api/admin/stats?window="+bad, nil); code != http.StatusBadRequest ||
			got["error"].(map[string]any)["fields"].([]any)[0].(map[string]any)["field"] != "window" {
			t.Fatalf("window=%s: %d %s", bad, code, raw)
		}
	}
}
