package store

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Sub is what store's subpackages (store/carrierdb, store/agentdb) build on: the client, the key namespace,
// the round-trip bound, the shared Pub/Sub connection and the audit log of one Redis. It is
// for packages under store/ only, which alone may import go-redis (depguard); everything else
// calls the methods of Redis and of those packages.
type Sub struct{ r *Redis }

// Sub exposes r's internals to store's subpackages; see Sub.
func (r *Redis) Sub() Sub { return Sub{r} }

// Client is the Redis client every instance shares.
func (s Sub) Client() redis.UniversalClient { return s.r.rdb }

// Namespace prefixes every key.
func (s Sub) Namespace() string { return s.r.keys.ns }

// OpCtx bounds a round trip by the store's OpTimeout unless ctx's deadline is sooner.
func (s Sub) OpCtx(ctx context.Context) (context.Context, context.CancelFunc) { return s.r.opCtx(ctx) }

// Subscribe delivers channels' messages over the instance's one Pub/Sub connection (see
// subscribe); it returns when ctx ends.
func (s Sub) Subscribe(ctx context.Context, channels []string, subscribed func(channel string), message func(channel, payload string)) error {
	return s.r.subscribe(ctx, channels, subscribed, message)
}

// ChangeConfig applies change and records a in the audit log in one MULTI, and notifies
// every instance on the config channel. change's keys must carry the {config} hash tag.
func (s Sub) ChangeConfig(ctx context.Context, a Audit, change func(redis.Pipeliner)) error {
	return s.r.changeConfig(ctx, a, change)
}

// AuditLog names the audit stream, its approximate bound and the config channel, for a
// script that audits a change itself (the stream carries the {config} hash tag).
func (s Sub) AuditLog() (stream string, limit int64, channel string) {
	return s.r.keys.audit(), auditLimit, s.r.keys.configChannel()
}

// RevokedChannel is where an agent's token rotation or deletion is published; Listen
// delivers it as NoticeAgentRevoked.
func (s Sub) RevokedChannel() string { return s.r.keys.revokedChannel() }
