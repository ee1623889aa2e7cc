package dispatch

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard/switchboard/carrier"
	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
)

// BenchmarkAllow is the breakers' call path: Allow, then done with a success, whose outcome
// is queued for Run (not running here: the queue fills and outcomes are dropped, counted).
func BenchmarkAllow(b *testing.B) {
	log := slog.New(slog.DiscardHandler)
	st := carrierdb.New(storetest.OpenTest(b, redistest.Namespace(b)))
	reg := carrier.NewRegistry(st, carrier.NewHTTPClient(), log)
	cfg := carrier.Config{ID: "bench", Kind: carrier.Twilio, APIURL: "https://api.twilio.com", AccountSID: "AC0123456789abcdef0123456789abcdef",
		AuthToken: "token-0123456789", From: "+15550100", Enabled: true, RequestTimeout: carrier.Duration(500 * time.Millisecond)}
	if _, err := reg.Put(context.Background(), cfg, "admin@test"); err != nil {
		b.Fatal(err)
	}
	br := NewBreakers(st, reg, BreakerOptions{Log: log})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		done, err := br.Allow(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		done(nil)
	}
}
