package dispatch

import (
	"context"
	"sync"
	"time"
)

// background runs work that outlives the call that started it (a lookup after a failover):
// each piece under its own timeout, and all of it cancelled, then waited for, by stop. The
// zero value is ready to use.
type background struct {
	mu     sync.Mutex
	ctx    context.Context // parent of every piece's context; cancelled by stop
	cancel context.CancelFunc
	closed bool
	work   sync.WaitGroup
}

// Go runs f in its own goroutine with a context that ends after timeout or at stop,
// whichever comes first. It reports false, and does not run f, once stop was called.
func (b *background) Go(timeout time.Duration, f func(ctx context.Context)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	if b.ctx == nil {
		b.ctx, b.cancel = context.WithCancel(context.Background())
	}
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	b.work.Go(func() {
		defer cancel()
		f(ctx)
	})
	return true
}

// stop cancels the work running and waits for it; Go runs nothing after it.
func (b *background) stop() {
	b.mu.Lock()
	b.closed = true
	if b.cancel != nil {
		b.cancel()
	}
	b.mu.Unlock()
	b.work.Wait()
}
