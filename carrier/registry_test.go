package carrier

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store/carrierdb"
	"github.com/switchboard/switchboard/store/redistest"
	"github.com/switchboard/switchboard/store/storetest"
)

func openStore(t *testing.T, ns string) *carrierdb.Store {
	t.Helper()
	return carrierdb.New(storetest.OpenTest(t, ns))
}

func TestRegistryKeepsSecretsWriteOnlyAndSharesChanges(t *testing.T) {
	ns := redistest.Namespace(t)
	a := NewRegistry(openStore(t, ns), NewHTTPClient(), slog.New(slog.DiscardHandler))
	b := NewRegistry(openStore(t, ns), NewHTTPClient(), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watched := make(chan error, 1)
	go func() { watched <- b.Watch(ctx) }()

	cfg := Config{ID: "primary", Kind: Twilio, APIURL: "http://127.0.0.1:1", AccountSID: "AC" + "0123456789abcdef0123456789abcdef",
		AuthToken: "secret-token-0123456789", From: "+15550100", Enabled: true}
	if _, err := a.Put(ctx, cfg, "admin"); err != nil {
		t.Fatal(err)
	}
	// An update that leaves the secret out keeps it.
	cfg.AuthToken, cfg.Priority = "", 3
	saved, err := a.Put(ctx, cfg, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if saved.AuthToken != "secret-token-0123456789" || saved.Priority != 3 || saved.Breaker.CallbackDeadline.Std() != DefaultCallbackDeadline {
		t.Fatalf("saved: %v (defaults filled, secret kept)", saved.Public())
	}
	if _, err := a.Put(ctx, Config{ID: "Bad ID", Kind: Twilio}, "admin"); err == nil {
		t.Fatal("an invalid configuration was stored")
	}
	redistest.Eventually(t, 5*time.Second, "the other instance seeing the change", func() bool {
		got, ok := b.Get("primary")
		return ok && got.Priority == 3
	})
	if _, ok := b.Client("primary"); !ok {
		t.Fatal("no client for a configured carrier")
	}
	if err := a.Delete(ctx, "primary", "admin"); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "primary", "admin"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if len(a.All()) != 0 {
		t.Fatal("deleted carrier still listed")
	}
	cancel()
	if err := <-watched; err != nil {
		t.Fatal(err)
	}
}
