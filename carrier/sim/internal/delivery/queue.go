package delivery

import (
	"cmp"
	"context"
	"net/http"
	"sync"
	"time"
)

// Callback is one status callback or webhook, ready to send.
type Callback struct {
	Method string
	URL    string
	// NotBefore is when it fired plus any callback delay in force then.
	NotBefore time.Time
	// RetryBusy retries 408, 429 and 5xx answers twice after a short backoff, as Telnyx
	// does; both carriers retry a failed connection once.
	RetryBusy bool
	// Render returns the body and headers of an attempt; Telnyx bodies carry the attempt.
	Render func(attempt int) ([]byte, http.Header)
	// Record is told of every attempt, and of the callback if a fault drops it.
	Record func(Result)
}

// Result is one attempt at a callback, or the callback dropped by a fault.
type Result struct {
	// Attempt counts from 1; above 1 it is a retry. 0 when dropped.
	Attempt   int
	Duplicate bool
	Dropped   bool
	// Status is the HTTP status received, 0 when none was.
	Status int
	// Acked is true for a 2xx answer.
	Acked bool
	Err   error
	At    time.Time
}

// Queue holds a call's callbacks, without bound, for the call's delivery goroutine.
type Queue struct {
	mu     sync.Mutex
	queue  []*Callback
	closed bool
	wake   chan struct{}
}

// NewQueue returns an empty, open queue.
func NewQueue() *Queue { return &Queue{wake: make(chan struct{}, 1)} }

// Push adds a callback, to go after those already queued.
func (q *Queue) Push(cb *Callback) {
	q.mu.Lock()
	q.queue = append(q.queue, cb)
	q.mu.Unlock()
	q.signal()
}

// Close says no more callbacks will come; the queue still drains.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *Queue) take() ([]*Callback, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	cbs := q.queue
	q.queue = nil
	return cbs, q.closed
}

// Deliver sends a queue's callbacks one at a time, in the order they were pushed, each not
// before its NotBefore, until the queue is closed and empty or ctx ends. With Reorder in
// force it swaps them in pairs. One goroutine per queue runs it.
func (s *Sender) Deliver(ctx context.Context, q *Queue) {
	var held *Callback
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	defer hold.Stop()
	for {
		cbs, closed := q.take()
		for _, cb := range cbs {
			if !sleep(ctx, time.Until(cb.NotBefore)) {
				return
			}
			f := s.opts.Faults()
			switch {
			case f.Reorder && held == nil:
				held = cb
				hold.Reset(cmp.Or(f.ReorderHold, defaultReorderHold))
			case f.Reorder:
				s.send(ctx, cb)
				s.send(ctx, held)
				held = nil
				hold.Stop()
			default:
				if held != nil {
					s.send(ctx, held)
					held = nil
				}
				s.send(ctx, cb)
			}
		}
		if len(cbs) > 0 {
			continue
		}
		if closed {
			if held != nil {
				s.send(ctx, held)
			}
			return
		}
		select {
		case <-q.wake:
		case <-hold.C:
			s.send(ctx, held)
			held = nil
		case <-ctx.Done():
			return
		}
	}
}

// send delivers one callback unless a drop fault or an outage swallows it, and sends it
// again if the duplicate fault says so.
func (s *Sender) send(ctx context.Context, cb *Callback) {
	f := s.opts.Faults()
	if f.Out || s.opts.Chance(f.DropRate) {
		cb.Record(Result{Dropped: true, At: time.Now()})
		return
	}
	s.post(ctx, cb, false)
	if s.opts.Chance(f.DuplicateRate) {
		s.post(ctx, cb, true)
	}
}

// post makes the attempts of one callback: a retry on a failed connection, as both carriers
// do, and with RetryBusy two more on 408, 429 and 5xx after a short backoff.
func (s *Sender) post(ctx context.Context, cb *Callback, dup bool) {
	for attempt := 1; ; attempt++ {
		body, h := cb.Render(attempt)
		status, _, err := s.Exchange(ctx, cb.Method, cb.URL, body, h)
		if ctx.Err() != nil {
			return // the carrier is closing: no result to record
		}
		r := Result{
			Attempt: attempt, Duplicate: dup, Status: status,
			Acked: err == nil && status >= 200 && status < 300, Err: err, At: time.Now(),
		}
		cb.Record(r)
		var backoff time.Duration
		switch {
		case r.Acked:
			return
		case attempt == 1 && IsConnectError(err):
		case cb.RetryBusy && attempt <= 2 && (status == 408 || status == 429 || status >= 500):
			backoff = 100 * time.Millisecond << (attempt - 1)
		default:
			return
		}
		if !sleep(ctx, backoff) {
			return
		}
	}
}
