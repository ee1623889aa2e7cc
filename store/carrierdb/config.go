package carrierdb

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
)

// Carrier configurations are kept as the JSON their owner (package carrier) gives us: this
// package does not interpret them. They include credentials: Redis is trusted storage, and
// the APIs above never return or log a secret.
//
// Every change is written in one MULTI with its audit entry and a notification on the config
// channel (store's audit log), so every instance reloads and the audit log cannot miss a
// change. The keys share the {config} hash tag, so the transaction is valid on Redis Cluster.

func (k keys) carriers() string { return k.ns + ":{config}:carriers" }

// PutCarrier stores a carrier's configuration and audits the change.
func (r *Store) PutCarrier(ctx context.Context, id string, config []byte, a store.Audit) error {
	return r.sub.ChangeConfig(ctx, a, func(p redis.Pipeliner) { p.HSet(ctx, r.keys.carriers(), id, config) })
}

// deleteCarrierScript deletes a carrier and audits it in one step, and does neither when
// there is no such carrier: a delete of nothing is not a change, and must leave no entry.
var deleteCarrierScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'at', ARGV[3], 'actor', ARGV[4], 'action', ARGV[5],
  'target', ARGV[6], 'detail', ARGV[7])
redis.call('PUBLISH', ARGV[8], ARGV[5] .. ' ' .. ARGV[6])
return 1`)

// DeleteCarrier removes a carrier's configuration and audits the change; store.ErrNotFound,
// and no audit entry, if there was none.
func (r *Store) DeleteCarrier(ctx context.Context, id string, a store.Audit) error {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	if a.At.IsZero() {
		a.At = time.Now()
	}
	audit, limit, channel := r.sub.AuditLog()
	n, err := deleteCarrierScript.Run(ctx, r.sub.Client(), []string{r.keys.carriers(), audit},
		id, limit, a.At.UnixMilli(), a.Actor, a.Action, a.Target, a.Detail, channel).Int()
	switch {
	case err != nil:
		return fmt.Errorf("carrierdb: %s %s: %w", a.Action, a.Target, err)
	case n == 0:
		return store.ErrNotFound
	}
	return nil
}

// Carriers returns every stored carrier configuration by id.
func (r *Store) Carriers(ctx context.Context) (map[string][]byte, error) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	all, err := r.sub.Client().HGetAll(ctx, r.keys.carriers()).Result()
	if err != nil {
		return nil, fmt.Errorf("carrierdb: read carriers: %w", err)
	}
	out := make(map[string][]byte, len(all))
	for id, v := range all {
		out[id] = []byte(v)
	}
	return out, nil
}
