package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotReplicated means an event reached the primary but not as many replicas as
// Options.MinReplicas asks for within Options.ReplicaTimeout. The event is not acknowledged:
// a failover now could lose it. The carrier's retry is a duplicate, which changes nothing and
// is acknowledged once replicas answer again.
var ErrNotReplicated = errors.New("store: event is on the primary but not yet on enough replicas")

// NoReplicas, as Options.MinReplicas, acknowledges an event once the primary has it, even on
// Sentinel. The zero value of MinReplicas picks by deployment instead.
const NoReplicas = -1

// defaultReplicaTimeout is how long an event waits for its replicas. go-redis reads all of a
// pipeline's replies within its read timeout (1 s, see redisurl.Tuned), so the wait must end well
// before that.
const defaultReplicaTimeout = 500 * time.Millisecond

// replicaPolicy says how many replicas must hold an event before it is acknowledged, and how
// long to wait for them. want 0 means the primary alone is enough.
type replicaPolicy struct {
	want    int
	timeout time.Duration
	// fence is a key every waiting pipeline writes before WAIT. WAIT counts the replicas that
	// have every write this connection made; a batch of duplicates writes nothing, and its
	// WAIT would then vouch only for older writes, not for the original of a duplicate that
	// another connection wrote a moment ago. The fence write moves this connection's offset
	// past everything the primary had, originals included.
	fence string
}

// replicaPolicyFor resolves Options.MinReplicas for the deployment: by default one replica
// on Sentinel (it has replicas, and a failover promotes one), none on a single node or
// Cluster. WAIT cannot vouch for a Cluster pipeline that spans nodes, so there only 0 is
// accepted.
func replicaPolicyFor(o Options, sentinel, cluster bool) (replicaPolicy, error) {
	p := replicaPolicy{want: o.MinReplicas, timeout: o.ReplicaTimeout, fence: o.Namespace + ":replication-fence"}
	switch {
	case p.want == 0 && sentinel:
		p.want = 1
	case p.want <= 0:
		p.want = 0
	}
	if p.want > 0 && cluster {
		return replicaPolicy{}, fmt.Errorf("store: waiting for %d replicas is not supported on Redis Cluster; set SWITCHBOARD_REDIS_MIN_REPLICAS=0", p.want)
	}
	if p.timeout <= 0 {
		p.timeout = defaultReplicaTimeout
	}
	return p, nil
}

// waitFor queues, after a pipeline's writes and on the same connection, the fence write and
// the WAIT that tells how many replicas have them. It returns nil when no replica is wanted.
func (p replicaPolicy) waitFor(ctx context.Context, pipe redis.Pipeliner) *redis.Cmd {
	if p.want == 0 {
		return nil
	}
	pipe.Set(ctx, p.fence, "1", 0)
	return pipe.Do(ctx, "WAIT", p.want, p.timeout.Milliseconds())
}

// check turns the reply of waitFor's WAIT into ErrNotReplicated when too few replicas have
// the pipeline's writes.
func (p replicaPolicy) check(wait *redis.Cmd) error {
	if wait == nil {
		return nil
	}
	n, err := wait.Int64()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotReplicated, err)
	}
	if n < int64(p.want) {
		return fmt.Errorf("%w (%d of %d answered within %s)", ErrNotReplicated, n, p.want, p.timeout)
	}
	return nil
}

// isFailingOver reports the errors a node answers while Sentinel moves the primary: the old
// primary, demoted, refuses writes; a new one may still be loading. Both pass within seconds.
func isFailingOver(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	for _, prefix := range []string{"READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS"} {
		if strings.HasPrefix(rerr.Error(), prefix) {
			return true
		}
	}
	return false
}
