package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The admin audit log records every configuration change (carriers, forced breakers, agents)
// with who made it. A change and its entry are written in one MULTI with a notification on
// the config channel, so every instance reloads and the log cannot miss a change. The keys
// share the {config} hash tag, so the transaction is valid on Redis Cluster; the carrier
// configurations themselves (store/carrierdb) live under the same tag for that reason.

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
