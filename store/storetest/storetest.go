// Package storetest opens store clients for the tests of the packages above store: one
// client on the test Redis, closed when the test ends. (store's own tests cannot use it:
// it imports store.)
package storetest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/redistest"
)

// Open is one instance's store client on the Redis at url (redistest.URL(tb) for the test
// Redis), under namespace ns; the test fails if it cannot connect.
func Open(tb testing.TB, url, ns string) *store.Redis {
	tb.Helper()
	return OpenWith(tb, store.Options{URL: url, Namespace: ns})
}

// OpenWith is Open with options of the test's own, such as a short OpTimeout for a test that
// stops Redis.
func OpenWith(tb testing.TB, opts store.Options) *store.Redis {
	tb.Helper()
	st, err := store.Open(context.Background(), opts, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() }) // the test is over; a close error changes nothing
	return st
}

// OpenTest is Open on the test Redis.
func OpenTest(tb testing.TB, ns string) *store.Redis {
	tb.Helper()
	return Open(tb, redistest.URL(tb), ns)
}
