package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Carrier configurations are kept as the JSON their owner (package carrier) gives us: the
// store does not interpret them. They include credentials: Redis is trusted storage, and the
// APIs above never return or log a secret.
//
// Every change is written in one MULTI with its audit entry and a notification on the config
// channel, so every instance reloads and the audit log cannot miss a change. The keys share
// the {config} hash tag, so the transaction is valid on Redis Cluster.

func (k keys) carriers() string      { return k.ns + ":{config}:carriers" }
func (k keys) audit() string         { return k.ns + ":{config}:audit" }
func (k keys) configChannel() string { return k.ns + ":config" }

// auditLimit bounds the audit log (approximately).
const auditLimit = 10_000

// Audit is one configuration change: who made it, when, what.
type Audit struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // who: "admin" and where from
	Action string    `json:"action"` // e.g. carrier.put, carrier.delete, breaker.force, agent.put
	Target string    `json:"target"` // e.g. the carrier id
	Detail string    `json:"detail"` // what changed, never a secret
}

// PutCarrier stores a carrier's configuration and audits the change.
func (r *Redis) PutCarrier(ctx context.Context, id string, config []byte, a Audit) error {
	return r.changeConfig(ctx, a, func(p redis.Pipeliner) { p.HSet(ctx, r.keys.carriers(), id, config) })
}

// deleteCarrierScript deletes a carrier and audits it in one step, and does neither when
// there is no such carrier: a delete of nothing is not a change, and must leave no entry.
var deleteCarrierScript = redis.NewScript(`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'at', ARGV[3], 'actor', ARGV[4], 'action', ARGV[5],
  'target', ARGV[6], 'detail', ARGV[7])
redis.call('PUBLISH', ARGV[8], ARGV[5] .. ' ' .. ARGV[6])
return 1`)

// DeleteCarrier removes a carrier's configuration and audits the change; ErrNotFound, and no
// audit entry, if there was none.
func (r *Redis) DeleteCarrier(ctx context.Context, id string, a Audit) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	if a.At.IsZero() {
		a.At = time.Now()
	}
	n, err := deleteCarrierScript.Run(ctx, r.rdb, []string{r.keys.carriers(), r.keys.audit()},
		id, auditLimit, a.At.UnixMilli(), a.Actor, a.Action, a.Target, a.Detail, r.keys.configChannel()).Int()
	switch {
	case err != nil:
		return fmt.Errorf("store: %s %s: %w", a.Action, a.Target, err)
	case n == 0:
		return ErrNotFound
	}
	return nil
}

// Audited records an audit entry for a change made elsewhere (a forced breaker, an agent).
func (r *Redis) Audited(ctx context.Context, a Audit) error {
	return r.changeConfig(ctx, a, func(redis.Pipeliner) {})
}

func (r *Redis) changeConfig(ctx context.Context, a Audit, change func(redis.Pipeliner)) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	if a.At.IsZero() {
		a.At = time.Now()
	}
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		change(p)
		p.XAdd(ctx, &redis.XAddArgs{Stream: r.keys.audit(), MaxLen: auditLimit, Approx: true, Values: []any{
			"at", a.At.UnixMilli(), "actor", a.Actor, "action", a.Action, "target", a.Target, "detail", a.Detail}})
		p.Publish(ctx, r.keys.configChannel(), a.Action+" "+a.Target)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: %s %s: %w", a.Action, a.Target, err)
	}
	return nil
}

// Carriers returns every stored carrier configuration by id.
func (r *Redis) Carriers(ctx context.Context) (map[string][]byte, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	all, err := r.rdb.HGetAll(ctx, r.keys.carriers()).Result()
	if err != nil {
		return nil, fmt.Errorf("store: read carriers: %w", err)
	}
	out := make(map[string][]byte, len(all))
	for id, v := range all {
		out[id] = []byte(v)
	}
	return out, nil
}

// AuditLog returns up to n of the newest audit entries, newest first.
func (r *Redis) AuditLog(ctx context.Context, n int64) ([]Audit, error) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	msgs, err := r.rdb.XRevRangeN(ctx, r.keys.audit(), "+", "-", n).Result()
	if err != nil {
		return nil, fmt.Errorf("store: read audit log: %w", err)
	}
	out := make([]Audit, 0, len(msgs))
	for _, m := range msgs {
		v := func(k string) string { s, _ := m.Values[k].(string); return s }
		out = append(out, Audit{At: unixMilli(v("at")), Actor: v("actor"), Action: v("action"), Target: v("target"), Detail: v("detail")})
	}
	return out, nil
}

// WatchConfig calls changed whenever any instance changes the configuration, and once each
// time the subscription is (re)established (a message may have been missed while it was
// down: Pub/Sub delivers at most once). It returns when ctx ends.
func (r *Redis) WatchConfig(ctx context.Context, changed func()) error {
	return r.subscribe(ctx, []string{r.keys.configChannel()}, func(string) { changed() }, func(string, string) { changed() })
}
