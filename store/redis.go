// Package store keeps Switchboard's shared state in Redis: call records and their event logs,
// the index from a carrier's call id to ours, the call-detail records of finished calls,
// durable carrier jobs, the reconciler's schedule, the admin audit log, and the notices
// instances send each other over Pub/Sub. Two sides' own records are in subpackages built
// on Redis.Sub: the carrier side's (configurations, shared breakers, liveness, recent
// carrier events) in store/carrierdb, the agents' (agents, presence, offers, instance
// liveness and the calls each holds) in store/agentdb.
//
// It and its subpackages are the only packages that import go-redis. Every instance of
// Switchboard shares one Redis (single node, Sentinel or Cluster); with no REDIS_URL the same
// code runs on an in-process Redis so that the demo needs nothing installed.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store/internal/redisurl"
)

// ErrNotFound is returned when a call (or other record) does not exist.
var ErrNotFound = errors.New("store: not found")

// Options configures the store. The zero value of every field but URL has a sane default.
type Options struct {
	// URL is REDIS_URL: "redis://..." or "rediss://..." for one node, the same with a
	// master_name parameter for Sentinel (go-redis's failover URL), a comma-separated list of
	// host:port for Redis Cluster, or empty for an embedded in-process Redis.
	URL string
	// Namespace prefixes every key, so several deployments (or tests) can share one Redis.
	Namespace string
	// Retention is how long a finished call stays readable. Default 24 h.
	Retention time.Duration
	// MaxCallAge bounds how long a call that never reports an end is kept. Default 48 h.
	MaxCallAge time.Duration
	// HistoryLimit bounds each call's event log (approximately, as Redis trims). Default 1000.
	HistoryLimit int64
	// CDRLimit bounds the stream of call-detail records. Default 100,000.
	CDRLimit int64
	// MinReplicas is how many replicas must have an event before it is acknowledged (WAIT
	// after each pipeline of events). 0 picks by deployment: 1 on Sentinel, none on a single
	// node or Cluster. NoReplicas never waits. Not supported above 0 on Cluster.
	MinReplicas int
	// ReplicaTimeout bounds the wait for those replicas; an event they do not confirm in time
	// is answered ErrNotReplicated (the carrier gets 503 and retries). Default 500 ms.
	ReplicaTimeout time.Duration
	// OpTimeout bounds one Redis round trip when the caller's context has no earlier deadline.
	// Default 1 s.
	OpTimeout time.Duration
}

func (o *Options) setDefaults() {
	if o.Namespace == "" {
		o.Namespace = "sb"
	}
	if o.Retention <= 0 {
		o.Retention = 24 * time.Hour
	}
	if o.MaxCallAge <= 0 {
		o.MaxCallAge = 48 * time.Hour
	}
	if o.HistoryLimit <= 0 {
		o.HistoryLimit = 1000
	}
	if o.CDRLimit <= 0 {
		o.CDRLimit = 100_000
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = defaultOpTimeout
	}
}

const defaultOpTimeout = time.Second

// Redis is the store. It is safe for concurrent use.
type Redis struct {
	rdb      redis.UniversalClient
	opts     Options
	keys     keys
	embedded *miniredis.Miniredis // nil unless REDIS_URL was empty
	batch    *batcher
	bus      *bus
	// cluster is true on Redis Cluster, where one script may touch one hash slot only.
	cluster  bool
	sentinel bool
	replicas replicaPolicy

	closeOnce sync.Once
	closeErr  error
}

// Open connects to the Redis that opts.URL names, or starts an embedded one, and checks that
// it answers. The embedded Redis is logged, once, as what it is: nothing persists and only one
// instance may use it.
func Open(ctx context.Context, opts Options, log *slog.Logger) (*Redis, error) {
	quietClientLog.Do(func() { redis.SetLogger(debugLogger{}) })
	opts.setDefaults()
	r := &Redis{opts: opts, keys: newKeys(opts.Namespace)}
	var err error
	if opts.URL == "" {
		r.embedded = miniredis.NewMiniRedis()
		// TTLs must follow the wall clock, or finished calls would never expire.
		r.embedded.ClockTTL(true)
		if err := r.embedded.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("store: start embedded redis: %w", err)
		}
		log.Warn("REDIS_URL is not set: using an embedded in-process Redis; nothing persists across restarts and only this one instance may run",
			"addr", r.embedded.Addr())
		r.rdb = redis.NewClient(redisurl.Tuned(&redis.Options{Addr: r.embedded.Addr()}))
	} else if r.rdb, err = redisurl.NewClient(opts.URL); err != nil {
		return nil, err
	}
	_, r.cluster = r.rdb.(*redis.ClusterClient)
	r.sentinel = redisurl.IsFailover(opts.URL)
	if r.replicas, err = replicaPolicyFor(opts, r.sentinel, r.cluster); err != nil {
		_ = r.rdb.Close() // the configuration error is what the caller needs
		r.stopEmbedded()
		return nil, err
	}
	index := []string{r.keys.active(), r.keys.cdr()}
	if r.cluster {
		index = nil // outside the call's hash slot: written after the script (Redis.apply)
	}
	r.batch = newBatcher(r.rdb, newApplyScript(opts, r.keys), index, r.replicas)
	r.bus = newBus(r)
	if err := r.Ping(ctx); err != nil {
		_ = r.Close() // Redis does not answer: that is the error to return
		return nil, redisurl.Redactedf(opts.URL, "store: redis at %s does not answer: %v", redisurl.Redact(opts.URL), err)
	}
	if !r.Embedded() {
		r.adviseStreamNodes(ctx, log)
	}
	return r, nil
}

// recommendedStreamNodeBytes is the stream-node-max-bytes we recommend. Every call's event
// log is a Redis stream of a handful of entries; with the default 4096, Redis 7.0 gives each
// new stream a 4 KiB node, which costs 4.7 KB of memory per call instead of 1.1 KB and makes
// the first event of every call about 14 µs slower in Redis.
const recommendedStreamNodeBytes = 512

// adviseStreamNodes logs, once at start, when Redis keeps stream nodes larger than
// recommended. Managed Redis often refuses CONFIG; then there is nothing to say.
func (r *Redis) adviseStreamNodes(ctx context.Context, log *slog.Logger) {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	v, err := r.rdb.ConfigGet(ctx, "stream-node-max-bytes").Result()
	if err != nil {
		return
	}
	if n, err := strconv.Atoi(v["stream-node-max-bytes"]); err == nil && n > 2*recommendedStreamNodeBytes {
		log.Info("redis keeps large stream nodes: each call's event log costs more memory and time than it needs; set stream-node-max-bytes to 512 (see docs/deploy.md, Redis)",
			"stream-node-max-bytes", n)
	}
}

// go-redis logs pool trouble (every failed dial while Redis is down) to stderr through a
// process-wide logger. Our callers already log the errors they get, with context, so the
// library's own lines go to slog's default logger at debug level.
var quietClientLog sync.Once

type debugLogger struct{}

func (debugLogger) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().Log(ctx, slog.LevelDebug, fmt.Sprintf("redis client: "+format, v...))
}

// Embedded reports whether the store runs on the in-process Redis.
func (r *Redis) Embedded() bool { return r.embedded != nil }

// Ping checks that Redis answers; /readyz uses it.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := r.opCtx(ctx)
	defer cancel()
	return r.rdb.Ping(ctx).Err()
}

// Close releases the connections and stops an embedded Redis.
func (r *Redis) Close() error {
	// Once: a server's shutdown and a test's cleanup may both close it.
	r.closeOnce.Do(func() {
		r.batch.close()
		r.bus.close()
		r.closeErr = r.rdb.Close()
		r.stopEmbedded()
	})
	return r.closeErr
}

func (r *Redis) stopEmbedded() {
	if r.embedded != nil {
		r.embedded.Close()
	}
}

// ReplicasWanted is how many replicas must have an event before it is acknowledged.
func (r *Redis) ReplicasWanted() int { return r.replicas.want }

// opCtx bounds a round trip by OpTimeout unless the caller's deadline is sooner.
func (r *Redis) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) < r.opts.OpTimeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, r.opts.OpTimeout)
}

// keys names every Redis key. Keys that one script touches together share a hash tag, so
// the scripts are valid on Redis Cluster. The names every event uses are made once.
type keys struct {
	ns                       string
	activeKey, cdrKey, calls string
}

func newKeys(ns string) keys {
	return keys{ns: ns, activeKey: ns + ":calls:active", cdrKey: ns + ":cdr", calls: ns + ":calls"}
}

func (k keys) call(id string) string    { return k.ns + ":call:{" + id + "}" }
func (k keys) callLog(id string) string { return k.ns + ":call:{" + id + "}:log" }

// The carrier-call-id index is keyed by the carrier's id alone: the calls API looks calls up
// by it without naming the carrier, and carriers' ids (Twilio's CA+32 hex, Telnyx's UUIDs)
// do not collide.
func (k keys) carrierIndex(carrierCallID string) string { return k.ns + ":cc:{" + carrierCallID + "}" }
func (k keys) pending(carrierCallID string) string {
	return k.ns + ":cc:{" + carrierCallID + "}:pending"
}
func (k keys) active() string  { return k.activeKey }
func (k keys) cdr() string     { return k.cdrKey }
func (k keys) channel() string { return k.calls }

// IsUnavailable reports whether err means Redis could not be reached or did not answer in
// time (as opposed to a bad request or a missing record): callers answer 503 and let the
// client retry.
func IsUnavailable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, ErrNotReplicated) || isFailingOver(err) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}
