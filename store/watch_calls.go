package store

import (
	"context"
	"strings"
)

// WatchCalls calls changed with a call's id and new state whenever any instance creates a
// call or moves its state (the apply script publishes it), and resubscribed when the
// subscription was re-established. Delivery is at most once: a caller that must not miss a
// change reads the call as well.
func (r *Redis) WatchCalls(ctx context.Context, changed func(callID, state string), resubscribed func()) error {
	return r.subscribe(ctx, []string{r.keys.channel()}, func(string) {
		if resubscribed != nil {
			resubscribed()
		}
	}, func(_, payload string) {
		id, state, _ := strings.Cut(payload, " ")
		changed(id, state)
	})
}
