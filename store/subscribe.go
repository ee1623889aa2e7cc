package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// bus shares one Pub/Sub connection among every watcher of this store. Each published
// message costs Redis a write per subscribed connection and costs us a read per connection,
// and call wake-ups are published for nearly every callback: watchers that each held their
// own connection made the hot path pay several times over for one message.
//
// Every watcher keeps its own queue, drained on its own goroutine, so a slow watcher never
// delays another or the reading loop. Pub/Sub delivers at most once anyway; a watcher whose
// queue overflows loses messages, and once it has caught up with its queue it is told it must
// re-read (as after a reconnect) instead of being silently behind.
type bus struct {
	r *Redis

	once sync.Once
	ps   *redis.PubSub
	stop context.CancelFunc
	done chan struct{}

	mu        sync.Mutex
	watchers  map[string][]*watcher // by channel
	confirmed map[string]bool       // channels Redis has confirmed on the current connection
	queueLen  int
}

// watcher is one caller of subscribe.
type watcher struct {
	queue chan delivery
	// lost holds the channels of messages that did not fit the queue; the watcher resyncs
	// them when its queue is empty. Guarded by bus.mu.
	lost map[string]bool
}

type delivery struct {
	channel, payload string
	resync           bool // the subscription was (re)made: what came before may be missed
}

// watcherQueue bounds what one watcher may fall behind by before it is told to re-read.
const watcherQueue = 4096

func newBus(r *Redis) *bus {
	return &bus{r: r, watchers: map[string][]*watcher{}, confirmed: map[string]bool{}, done: make(chan struct{}),
		queueLen: watcherQueue}
}

// subscribe delivers the messages of channels to message, and calls subscribed for each
// channel each time its subscription is (re)made, since Pub/Sub delivers at most once and a
// watcher must re-read what it may have missed. It returns when ctx ends. Both functions run
// on the caller's goroutine, in order.
func (r *Redis) subscribe(ctx context.Context, channels []string, subscribed func(channel string), message func(channel, payload string)) error {
	b := r.bus
	b.once.Do(b.start)
	if b.ps == nil {
		return errors.New("store: subscribe after Close")
	}
	w := &watcher{queue: make(chan delivery, max(b.queueLen, len(channels))), lost: map[string]bool{}}
	var fresh []string
	b.mu.Lock()
	for _, ch := range channels {
		if len(b.watchers[ch]) == 0 {
			fresh = append(fresh, ch)
		}
		b.watchers[ch] = append(b.watchers[ch], w)
		if b.confirmed[ch] {
			// The connection already carries ch; this watcher starts from here.
			w.queue <- delivery{channel: ch, resync: true}
		}
	}
	b.mu.Unlock()
	defer b.leave(w, channels)
	if len(fresh) > 0 {
		if err := b.ps.Subscribe(ctx, fresh...); err != nil && ctx.Err() == nil {
			return fmt.Errorf("store: subscribe to %v: %w", fresh, err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.done:
			return nil
		case d := <-w.queue:
			switch {
			case d.resync && subscribed != nil:
				subscribed(d.channel)
			case !d.resync:
				message(d.channel, d.payload)
			}
			// Caught up: what was lost while the queue was full is re-read now, after the
			// older messages, so none of them can undo the re-read.
			if len(w.queue) == 0 {
				for _, ch := range b.takeLost(w) {
					if subscribed != nil {
						subscribed(ch)
					}
				}
			}
		}
	}
}

func (b *bus) takeLost(w *watcher) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(w.lost) == 0 {
		return nil
	}
	chs := make([]string, 0, len(w.lost))
	for ch := range w.lost {
		chs = append(chs, ch)
	}
	clear(w.lost)
	return chs
}

// leave removes w; a channel nobody watches any more is unsubscribed.
func (b *bus) leave(w *watcher, channels []string) {
	var gone []string
	b.mu.Lock()
	for _, ch := range channels {
		ws := b.watchers[ch]
		for i, x := range ws {
			if x == w {
				ws = append(ws[:i:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(b.watchers, ch)
			delete(b.confirmed, ch)
			gone = append(gone, ch)
		} else {
			b.watchers[ch] = ws
		}
	}
	b.mu.Unlock()
	if len(gone) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), b.r.opts.OpTimeout)
		defer cancel()
		_ = b.ps.Unsubscribe(ctx, gone...) // best effort: a message for nobody is dropped
	}
}

// start opens the shared connection and its reading loop, which runs until the store closes.
func (b *bus) start() {
	ctx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	b.ps = b.r.rdb.Subscribe(ctx)
	// A blocked Receive does not watch ctx; closing the subscription is what wakes it.
	context.AfterFunc(ctx, func() { _ = b.ps.Close() }) // the bus is closing; its connection goes either way
	go func() {
		defer close(b.done)
		for {
			msg, err := b.ps.Receive(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				// The connection is gone: nothing is confirmed until go-redis reconnects and
				// resubscribes on the next Receive. Pace the retries.
				b.mu.Lock()
				clear(b.confirmed)
				b.mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-time.After(250 * time.Millisecond):
				}
				continue
			}
			switch m := msg.(type) {
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					b.dispatch(delivery{channel: m.Channel, resync: true})
				}
			case *redis.Message:
				b.dispatch(delivery{channel: m.Channel, payload: m.Payload})
			}
		}
	}()
}

func (b *bus) dispatch(d delivery) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d.resync {
		b.confirmed[d.channel] = true
	}
	for _, w := range b.watchers[d.channel] {
		select {
		case w.queue <- d:
		default:
			// A full queue is never empty, so its watcher will find this and resync.
			w.lost[d.channel] = true
		}
	}
}

// close stops the shared connection, if it was ever opened, and ends every watcher.
func (b *bus) close() {
	b.once.Do(func() { close(b.done) }) // never started: nothing to stop
	if b.stop != nil {
		b.stop()
		<-b.done
	}
}
