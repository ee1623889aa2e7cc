package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// batcher sends the events of concurrent requests to Redis together: on a single node the
// events queued at once go to the apply script in one call (the script loops over them), so
// Redis parses, sets up and replicates one script run per batch instead of one per event,
// and the socket carries one write and one read per batch on both sides. On Cluster, where a
// script may touch one hash slot only, each event is its own script call, and the batch is a
// pipeline of them. Each request still waits for its own reply, so a carrier is acknowledged
// only once its event is stored. Under light load a batch is one event and costs what a plain
// call does; under heavy load batches grow by themselves, because events queue while the
// previous batch is on the wire.
type batcher struct {
	rdb    redis.UniversalClient
	script *redis.Script
	// index holds the active-call index and call-detail stream keys, which the script writes
	// itself on a single node; nil on Cluster.
	index []string
	// replicas: an event is acknowledged once this many replicas have it (WAIT after each
	// batch), so a failover cannot lose it.
	replicas replicaPolicy
	in       chan *applyCall
	stop     chan struct{}
	wg       sync.WaitGroup
}

// applyCall is one event waiting for its batch: its call's two keys and its applyStride
// arguments.
type applyCall struct {
	call, log string
	args      []any
	res       []any
	err       error
	done      chan struct{}
}

const (
	// batchers is how many batches may be in flight at once: enough to keep Redis busy
	// while replies travel back, few enough that batches still form.
	batchers = 2
	maxBatch = 128
)

func newBatcher(rdb redis.UniversalClient, script *redis.Script, index []string, replicas replicaPolicy) *batcher {
	b := &batcher{rdb: rdb, script: script, index: index, replicas: replicas,
		in: make(chan *applyCall, 4*maxBatch), stop: make(chan struct{})}
	for range batchers {
		b.wg.Go(b.loop)
	}
	return b
}

func (b *batcher) close() {
	close(b.stop)
	b.wg.Wait()
}

var callPool = sync.Pool{New: func() any { return &applyCall{done: make(chan struct{}, 1)} }}

// run applies one event (its call's hash and log keys, and its arguments) in the next batch
// and waits for its reply or for ctx. An event whose ctx ends while it waits may still be
// applied; the caller answers an error, and the carrier's retry is then a duplicate, which
// changes nothing.
func (b *batcher) run(ctx context.Context, callKey, logKey string, args []any) ([]any, error) {
	c := callPool.Get().(*applyCall)
	c.call, c.log, c.args = callKey, logKey, args
	select {
	case b.in <- c:
	case <-ctx.Done():
		c.args = nil
		callPool.Put(c)
		return nil, ctx.Err()
	case <-b.stop:
		c.args = nil
		callPool.Put(c)
		return nil, errBatcherClosed
	}
	select {
	case <-c.done:
		return c.reply()
	case <-ctx.Done():
		// The batch still holds c and will signal done; leave c to the garbage collector.
		return nil, ctx.Err()
	case <-b.stop:
		// The store is closing: a loop may be sending c's batch still (then its reply is
		// here or coming), or none will take c from the queue any more.
		select {
		case <-c.done:
			return c.reply()
		default:
			return nil, errBatcherClosed // c is left to the garbage collector, as above
		}
	}
}

// errBatcherClosed is the answer to an event the store was closed under: unavailable, as
// any caller of a store that is going away should treat it (IsUnavailable).
var errBatcherClosed = fmt.Errorf("store: closed: %w", redis.ErrClosed)

// reply hands back c's result and returns c to the pool.
func (c *applyCall) reply() ([]any, error) {
	res, err := c.res, c.err
	c.args, c.res, c.err = nil, nil, nil
	callPool.Put(c)
	return res, err
}

func (b *batcher) loop() {
	batch := make([]*applyCall, 0, maxBatch)
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
		b.send(batch)
		for _, c := range batch {
			c.done <- struct{}{}
		}
	}
}

// opTimeout bounds one batch; the callers' own deadlines are usually shorter.
const opTimeout = 2 * defaultOpTimeout

// send runs a batch and sets each call's reply: one script call for the whole batch on a
// single node, a pipeline of one per event on Cluster, followed when replicas are wanted by a
// WAIT on the same connection (every event is answered ErrNotReplicated when too few
// replicas have the batch). If Redis lost the script (a restart, a failover, SCRIPT FLUSH)
// the calls it refused are sent again as EVAL, which loads it back.
func (b *batcher) send(batch []*applyCall) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	keys, args := b.arguments(batch)
	cmds, wait := b.exec(ctx, keys, args, false)
	// Only the calls Redis refused for want of the script are sent again: a refused call ran
	// nothing, and on Cluster the others (other nodes) are stored already.
	var again []int
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil && isNoScript(err) {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		k, a := make([][]string, len(again)), make([][]any, len(again))
		for j, i := range again {
			k[j], a[j] = keys[i], args[i]
		}
		var retried []*redis.Cmd
		retried, wait = b.exec(ctx, k, a, true)
		for j, i := range again {
			cmds[i] = retried[j]
		}
	}
	unreplicated := b.replicas.check(wait)
	if b.index != nil {
		replies, err := cmds[0].Slice()
		for i, c := range batch {
			c.res, c.err = reply(replies, i, err)
		}
	} else {
		for i, c := range batch {
			replies, err := cmds[i].Slice()
			c.res, c.err = reply(replies, 0, err)
		}
	}
	if unreplicated != nil {
		for _, c := range batch {
			if c.err == nil {
				c.res, c.err = nil, unreplicated
			}
		}
	}
}

// arguments lays a batch out as the script takes it: for one script call, every event's two
// keys then the index keys, and every event's arguments; on Cluster, each event's own.
func (b *batcher) arguments(batch []*applyCall) (keys [][]string, args [][]any) {
	if b.index == nil {
		keys, args = make([][]string, len(batch)), make([][]any, len(batch))
		for i, c := range batch {
			keys[i], args[i] = []string{c.call, c.log}, c.args
		}
		return keys, args
	}
	k := make([]string, 0, 2*len(batch)+len(b.index))
	a := make([]any, 0, applyStride*len(batch))
	for _, c := range batch {
		k = append(k, c.call, c.log)
		a = append(a, c.args...)
	}
	return [][]string{append(k, b.index...)}, [][]any{a}
}

// exec sends one script call per element of keys, as EVALSHA or (eval) EVAL, in one
// pipeline with the replicas' WAIT.
func (b *batcher) exec(ctx context.Context, keys [][]string, args [][]any, eval bool) ([]*redis.Cmd, *redis.Cmd) {
	pipe := b.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(keys))
	for i := range keys {
		if eval {
			cmds[i] = b.script.Eval(ctx, pipe, keys[i], args[i]...)
		} else {
			cmds[i] = b.script.EvalSha(ctx, pipe, keys[i], args[i]...)
		}
	}
	wait := b.replicas.waitFor(ctx, pipe)
	_, _ = pipe.Exec(ctx) // each command carries its own error, read by the caller
	return cmds, wait
}

// reply is event i's reply within a script call's replies.
func reply(replies []any, i int, err error) ([]any, error) {
	if err != nil {
		return nil, err
	}
	if i >= len(replies) {
		return nil, fmt.Errorf("store: apply script answered %d replies for event %d", len(replies), i+1)
	}
	switch r := replies[i].(type) {
	case []any:
		return r, nil
	case error:
		return nil, r
	}
	return nil, fmt.Errorf("store: apply script answered %T for event %d", replies[i], i+1)
}

func isNoScript(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.HasPrefix(rerr.Error(), "NOSCRIPT")
}
