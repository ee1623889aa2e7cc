// Package carrierdb keeps the carrier side's shared records in Redis: each carrier's
// configuration, its circuit breaker shared by every instance, when any instance last heard
// from it, and the recent failovers and breaker changes the console shows. Package carrier
// is its user.
//
// It is not a second store: it is built on store's Redis (its client, key namespace, Pub/Sub
// connection and audit log, through Redis.Sub), and its Store carries every method of
// *store.Redis too, so one value serves a consumer that needs calls and carriers both. Keys
// are unchanged from when these records lived in store, so a deployment keeps its data.
package carrierdb

import (
	"github.com/switchboard/switchboard/store"
)

// Store is a store.Redis with the carrier side's records. It is safe for concurrent use.
type Store struct {
	*store.Redis
	sub  store.Sub
	keys keys
}

// New returns the carrier side's records on r.
func New(r *store.Redis) *Store {
	s := r.Sub()
	return &Store{Redis: r, sub: s, keys: keys{ns: s.Namespace()}}
}

// keys names this package's Redis keys, under store's namespace.
type keys struct{ ns string }
