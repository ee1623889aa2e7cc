// Package agentdb keeps the agents' side's shared records in Redis: agents and their hashed
// login tokens, presence (who is available, busy, away or in wrap-up, and on which instance),
// the idle queue and reservations that choose who rings, each call's offer (whom it rings,
// who took it, which instance holds its media), every instance's heartbeat with the calls it
// holds, and the revocation of an agent's sessions. Package webrtc/agents is its main user;
// the admin API and the server's wiring use it too.
//
// It is not a second store: it is built on store's Redis (its client, key namespace and
// round-trip bound, through Redis.Sub), and its Store carries every method of *store.Redis
// too, so the hub takes one value that does calls, notices and agents. The notices between
// instances (Listen, NotifyInstance, NotifyAgentFree) stay in store, on its one Pub/Sub
// connection. Keys are unchanged from when these records lived in store, so a deployment
// keeps its data; every one shares the {agents} hash tag, so the scripts that look across
// agents are valid on Redis Cluster.
package agentdb

import (
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
)

// Store is a store.Redis with the agents' records. It is safe for concurrent use.
type Store struct {
	*store.Redis
	sub  store.Sub
	rdb  redis.UniversalClient
	keys keys
}

// New returns the agents' records on r.
func New(r *store.Redis) *Store {
	s := r.Sub()
	return &Store{Redis: r, sub: s, rdb: s.Client(), keys: keys{ns: s.Namespace(), revoked: s.RevokedChannel()}}
}

// keys names this package's Redis keys, under store's namespace. revoked is store's channel
// name, since store's Listen delivers what is published there.
type keys struct{ ns, revoked string }

// unixMilli reads a time stored as Unix milliseconds; empty or malformed is the zero time.
func unixMilli(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || s == "" {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
