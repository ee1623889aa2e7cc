package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/switchboard/switchboard/carrier/reconcile"
	"github.com/switchboard/switchboard/webhooks"
)

// reconcileOnStop wraps the media handler so that a call whose media stream closes is checked
// with its carrier soon after: the stream ending is often the only sign of a call's end that
// reaches us when the carrier's final callback is lost.
type reconcileOnStop struct {
	next       webhooks.MediaHandler
	reconciler *reconcile.Reconciler
	log        *slog.Logger
}

func (r reconcileOnStop) StreamStarted(ctx context.Context, s *webhooks.MediaStream) (webhooks.MediaReceiver, error) {
	next := r.next
	if next == nil {
		return stopNotice{callID: s.CallID, r: r}, nil
	}
	recv, err := next.StreamStarted(ctx, s)
	if err != nil {
		return nil, err
	}
	return stopNotice{MediaReceiver: recv, callID: s.CallID, r: r}, nil
}

type stopNotice struct {
	webhooks.MediaReceiver
	callID string
	r      reconcileOnStop
}

func (n stopNotice) Audio(b []byte) {
	if n.MediaReceiver != nil {
		n.MediaReceiver.Audio(b)
	}
}

func (n stopNotice) DTMF(d string) {
	if n.MediaReceiver != nil {
		n.MediaReceiver.DTMF(d)
	}
}

func (n stopNotice) Stopped() {
	if n.MediaReceiver != nil {
		n.MediaReceiver.Stopped()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := n.r.reconciler.Soon(ctx, n.callID); err != nil {
		n.r.log.Debug("reconcile: closed media stream not scheduled for a check", "call", n.callID, "err", err)
	}
}
