package carrierdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
)

func TestCarrierConfigIsAuditedAndBroadcast(t *testing.T) {
	ns := redistest.Namespace(t)
	a := openNS(t, ns)
	b := openNS(t, ns) // a second instance on the same Redis
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() { done <- b.WatchConfig(ctx, func() { changes <- struct{}{} }) }()
	wait := func(what string) {
		t.Helper()
		select {
		case <-changes:
		case <-time.After(5 * time.Second):
			t.Fatalf("no change notification for %s", what)
		}
	}
	wait("subscription")

	if err := a.PutCarrier(ctx, "primary", []byte(`{"kind":"twilio"}`), store.Audit{Actor: "admin@127.0.0.1", Action: "carrier.put", Target: "primary", Detail: "created"}); err != nil {
		t.Fatal(err)
	}
	wait("put")
	all, err := b.Carriers(ctx)
	if err != nil || string(all["primary"]) != `{"kind":"twilio"}` {
		t.Fatalf("carriers: %q %v", all, err)
	}
	if err := a.DeleteCarrier(ctx, "primary", store.Audit{Actor: "admin", Action: "carrier.delete", Target: "primary"}); err != nil {
		t.Fatal(err)
	}
	wait("delete")
	if err := a.DeleteCarrier(ctx, "primary", store.Audit{Actor: "admin", Action: "carrier.delete", Target: "primary"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	log, err := a.AuditLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	// The delete of nothing left no entry.
	if len(log) != 2 || log[1].Action != "carrier.put" || log[1].Actor != "admin@127.0.0.1" || log[1].At.IsZero() ||
		log[0].Action != "carrier.delete" || log[0].At.IsZero() || log[0].Actor != "admin" {
		t.Fatalf("audit log (newest first): %+v", log)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
