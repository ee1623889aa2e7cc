package store

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// batcher sends the apply scripts of concurrent requests to Redis together, in pipelines: one
// write and one read for a batch instead of one of each per event, on both sides of the
// socket. Each request still waits for its own reply, so a carrier is acknowledged only once
// its event is stored. Under light load a batch is one event and costs what a plain call
// does; under heavy load batches grow by themselves, because events queue while the previous
// pipeline is on the wire.
type batcher struct {
	rdb redis.UniversalClient
	// replicas: an event is acknowledged once this many replicas have it (WAIT after each
	// pipeline), so a failover cannot lose it.
	replicas replicaPolicy
	in       chan *scriptCall
	stop     chan struct{}
	wg       sync.WaitGroup
}

// scriptCall is one script run waiting for its batch.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	res    []any
	err    error
	done   chan struct{}
}

const (
	// batchers is how many pipelines may be in flight at once: enough to keep Redis busy
	// while replies travel back, few enough that batches still form.
	batchers = 4
	maxBatch = 128
)

func newBatcher(rdb redis.UniversalClient, replicas replicaPolicy) *batcher {
	b := &batcher{rdb: rdb, replicas: replicas, in: make(chan *scriptCall, 4*maxBatch), stop: make(chan struct{})}
	for range batchers {
		b.wg.Go(b.loop)
	}
	return b
}

func (b *batcher) close() {
	close(b.stop)
	b.wg.Wait()
}

var callPool = sync.Pool{New: func() any { return &scriptCall{done: make(chan struct{}, 1)} }}

// run runs script in the next batch and waits for its reply or for ctx. A call whose ctx
// ends while it waits may still be applied; the caller answers an error, and the carrier's
// retry is then a duplicate, which changes nothing.
func (b *batcher) run(ctx context.Context, script *redis.Script, keys []string, args ...any) ([]any, error) {
	c := callPool.Get().(*scriptCall)
	c.script, c.keys, c.args = script, keys, args
	select {
	case b.in <- c:
	case <-ctx.Done():
		c.script, c.keys, c.args = nil, nil, nil
		callPool.Put(c)
		return nil, ctx.Err()
	}
	select {
	case <-c.done:
		res, err := c.res, c.err
		c.script, c.keys, c.args, c.res, c.err = nil, nil, nil, nil, nil
		callPool.Put(c)
		return res, err
	case <-ctx.Done():
		// The batch still holds c and will signal done; leave c to the garbage collector.
		return nil, ctx.Err()
	}
}

func (b *batcher) loop() {
	batch := make([]*scriptCall, 0, maxBatch)
	cmds := make([]*redis.Cmd, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case c := <-b.in:
			batch = append(batch, c)
		case <-b.stop:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case c := <-b.in:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		var unreplicated error
		cmds, unreplicated = b.send(batch, cmds[:0])
		for i, c := range batch {
			c.res, c.err = cmds[i].Slice()
			if c.err == nil && unreplicated != nil {
				c.res, c.err = nil, unreplicated
			}
			c.done <- struct{}{}
		}
	}
}

// opTimeout bounds one pipeline; the callers' own deadlines are usually shorter.
const opTimeout = 2 * defaultOpTimeout

// send runs a batch as one pipeline of EVALSHAs, followed when replicas are wanted by a WAIT
// on the same connection; unreplicated is ErrNotReplicated when too few replicas have the
// batch. If Redis lost the scripts (a restart, a failover, SCRIPT FLUSH) the batch is sent
// again as EVALs, which load them back.
func (b *batcher) send(batch []*scriptCall, cmds []*redis.Cmd) (_ []*redis.Cmd, unreplicated error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	pipe := b.rdb.Pipeline()
	for _, c := range batch {
		cmds = append(cmds, c.script.EvalSha(ctx, pipe, c.keys, c.args...))
	}
	wait := b.replicas.waitFor(ctx, pipe)
	_, _ = pipe.Exec(ctx) // each command carries its own error, read below
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && isNoScript(err) {
			pipe = b.rdb.Pipeline()
			for i, c := range batch {
				cmds[i] = c.script.Eval(ctx, pipe, c.keys, c.args...)
			}
			wait = b.replicas.waitFor(ctx, pipe)
			_, _ = pipe.Exec(ctx) // each command carries its own error, read below
			break
		}
	}
	return cmds, b.replicas.check(wait)
}

func isNoScript(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "NOSCRIPT")
}
