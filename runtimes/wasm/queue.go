package wasm

import (
	"context"
	"sync/atomic"
	"time"
)

// A burst of requests beyond what a service runs at once waits for a slot
// instead of being refused at once: a 2 ms handler with 16 slots serves a
// thousand requests in well under a second. The wait is bounded in length
// and in time, so an overloaded service still answers 503 soon.
const (
	// defaultMaxQueued is how many requests wait for a slot of one service
	// at once; one more is answered 503 at once.
	defaultMaxQueued = 1024
	// defaultQueueWait is how long a request waits for a slot before 503.
	defaultQueueWait = 10 * time.Second
)

// requestLimiter is the requests one service runs at once and the queue of
// those waiting for a slot.
type requestLimiter struct {
	slots      chan struct{}
	waiting    atomic.Int32
	maxWaiting int32
	wait       time.Duration
	// queued is the provider's count of waiting requests, all services'.
	queued *atomic.Int32
}

func (p *Provider) newRequestLimiter() *requestLimiter {
	queued, wait := p.cfg.MaxQueued, p.cfg.QueueWait
	if queued == 0 {
		queued = defaultMaxQueued
	}
	if wait <= 0 {
		wait = defaultQueueWait
	}
	return &requestLimiter{slots: make(chan struct{}, p.cfg.MaxConcurrency), maxWaiting: int32(max(queued, 0)), wait: wait, queued: &p.queued}
}

// queueOutcome is why acquire gave no slot.
type queueOutcome int

const (
	admitted queueOutcome = iota
	queueFull
	waitedTooLong
	clientGone
)

// acquire takes a slot: at once if one is free, else after waiting in the
// queue. release gives it back.
func (l *requestLimiter) acquire(ctx context.Context) queueOutcome {
	select {
	case l.slots <- struct{}{}:
		return admitted
	default:
	}
	if l.waiting.Add(1) > l.maxWaiting {
		l.waiting.Add(-1)
		return queueFull
	}
	defer l.waiting.Add(-1)
	l.queued.Add(1)
	defer l.queued.Add(-1)
	timer := time.NewTimer(l.wait)
	defer timer.Stop()
	select {
	case l.slots <- struct{}{}:
		return admitted
	case <-timer.C:
		return waitedTooLong
	case <-ctx.Done():
		return clientGone
	}
}

func (l *requestLimiter) release() { <-l.slots }
