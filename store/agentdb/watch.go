package agentdb

import "context"

// Presence changes are announced on a channel of their own, for watchers such as the
// console's wallboard: an agent's state moves without any call changing (away, back,
// signed in or out). It is a hint, at most once like every Pub/Sub message; a watcher that
// must not miss a change reads presence as well. The hub does not listen to it.

func (k keys) presenceChannel() string { return k.ns + ":presence" }

// presenceChanged announces that agent's presence changed. It is best effort: the change is
// stored already, and a lost announcement costs a watcher one poll.
func (r *Store) presenceChanged(ctx context.Context, agent string) {
	ctx, cancel := r.sub.OpCtx(ctx)
	defer cancel()
	_ = r.rdb.Publish(ctx, r.keys.presenceChannel(), agent).Err() // see above
}

// WatchPresence calls changed with an agent's id whenever its presence changes on any
// instance, and resubscribed each time the subscription is (re)made. It returns when ctx ends.
func (r *Store) WatchPresence(ctx context.Context, changed func(agent string), resubscribed func()) error {
	return r.sub.Subscribe(ctx, []string{r.keys.presenceChannel()}, func(string) {
		if resubscribed != nil {
			resubscribed()
		}
	}, func(_, agent string) { changed(agent) })
}
