package store

import (
	"context"
	"iter"
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
		for line := range callChanges(payload) {
			id, state, _ := strings.Cut(line, " ")
			changed(id, state)
		}
	})
}

// callChanges yields the changes of one message on the calls channel: the apply script
// publishes one message per batch of events, "<call id> <state>" a line, so an instance reads
// and hands on one message per batch instead of one per event.
func callChanges(payload string) iter.Seq[string] {
	return strings.SplitSeq(payload, "\n")
}
