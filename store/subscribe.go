package store

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// subscribe is the one Pub/Sub loop of the store: it delivers the messages of channels to
// message, and calls subscribed for each channel each time its subscription is (re)made, since
// Pub/Sub delivers at most once and a watcher must re-read what it may have missed. It returns
// when ctx ends. Everything runs on the caller's goroutine, in order.
func (r *Redis) subscribe(ctx context.Context, channels []string, subscribed func(channel string), message func(channel, payload string)) error {
	sub := r.rdb.Subscribe(ctx)
	defer sub.Close()
	// A blocked Receive does not watch ctx; closing the subscription is what wakes it.
	stop := context.AfterFunc(ctx, func() { sub.Close() })
	defer stop()
	if err := sub.Subscribe(ctx, channels...); err != nil && ctx.Err() == nil {
		return fmt.Errorf("store: subscribe to %v: %w", channels, err)
	}
	for {
		msg, err := sub.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// go-redis reconnects and resubscribes on the next Receive; pace the retries.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && subscribed != nil {
				subscribed(m.Channel)
			}
		case *redis.Message:
			message(m.Channel, m.Payload)
		}
	}
}
