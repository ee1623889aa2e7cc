package dispatch

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackgroundEndsAtItsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b background
		defer b.stop()
		start := time.Now()
		ended := make(chan error, 1)
		b.Go(time.Second, func(ctx context.Context) {
			<-ctx.Done()
			ended <- ctx.Err()
		})
		if err := <-ended; !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("ended with %v after %v; want the deadline after 1s", err, time.Since(start))
		}
	})
}

func TestBackgroundStopCancelsAndWaits(t *testing.T) {
	var b background
	started, finished := make(chan struct{}), make(chan error, 1)
	if !b.Go(time.Hour, func(ctx context.Context) {
		close(started)
		<-ctx.Done()
		finished <- ctx.Err()
	}) {
		t.Fatal("Go refused work before stop")
	}
	<-started
	b.stop()
	select {
	case err := <-finished:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("work ended with %v; want canceled", err)
		}
	default:
		t.Fatal("stop returned before the work ended")
	}
	if b.Go(time.Hour, func(context.Context) { t.Error("work ran after stop") }) {
		t.Fatal("Go accepted work after stop")
	}
}
