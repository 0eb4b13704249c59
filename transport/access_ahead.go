package transport

import (
	"context"
	"sync"
	"time"
)

// Streams opened ahead per access port, and how long one may wait for its
// connection. A web page opens a handful of connections at once; two ready
// streams cover the first of them and the rest overlap their opens. The
// age bound keeps the service's side short: each ready stream holds a
// connection the service accepted and sees no request on, and services
// close those (HTTP servers after tens of seconds); ten seconds is well
// inside that, and covers the burst of a page load.
const (
	AccessAheadStreams = 2
	AccessAheadMaxAge  = 10 * time.Second
)

// AccessAhead keeps a few access streams opened ahead for one local port,
// header sent and the peer's admission received, so a new local connection
// does not wait for a stream open, the peer's role check and service dial,
// and the reply. The forwarder does not use it: each ready stream holds a
// connection the service accepted and sees nothing on (a server that greets
// first, like sshd or a database, greets into it and may time it out), so
// the forwarder keeps warm streams instead (AccessDialer), which hold
// nothing at the service; BenchmarkAccess measures both. Streams are opened
// ahead only after a connection took one
// (an entry nobody uses holds nothing at the peer) and each is dropped
// once older than the age bound, never replaced by the drop itself. A
// refusal is never kept: the next connection opens its own stream and gets
// the refusal's answer as it would without streams ahead.
type AccessAhead struct {
	open   func(ctx context.Context) (HalfCloser, error)
	size   int
	maxAge time.Duration

	mu      sync.Mutex
	ready   []*aheadStream
	filling int
	closed  bool
}

type aheadStream struct {
	s      HalfCloser
	expiry *time.Timer
}

// NewAccessAhead keeps up to size streams opened by open ahead, each for
// at most maxAge. open should return as soon as the header is written
// (WithEarlyData): the pool waits for the reply itself.
func NewAccessAhead(size int, maxAge time.Duration, open func(ctx context.Context) (HalfCloser, error)) *AccessAhead {
	return &AccessAhead{open: open, size: size, maxAge: maxAge}
}

// Take returns a stream opened ahead, or one opened now with ctx, and
// starts opening the next ones ahead.
func (a *AccessAhead) Take(ctx context.Context) (HalfCloser, error) {
	a.mu.Lock()
	var got *aheadStream
	if n := len(a.ready); n > 0 {
		got = a.ready[n-1]
		a.ready = a.ready[:n-1]
		a.refillLocked()
	}
	a.mu.Unlock()
	if got != nil {
		got.expiry.Stop()
		return got.s, nil
	}
	s, err := a.open(ctx)
	if err != nil {
		return nil, err
	}
	// Open the next ones once this one is admitted: the service then
	// accepts this connection first, and a refused one opens none.
	go func() {
		if as, ok := s.(*AccessStream); ok && as.Accepted() != nil {
			return
		}
		a.mu.Lock()
		a.refillLocked()
		a.mu.Unlock()
	}()
	return s, nil
}

// refillLocked starts opening streams until ready and opening ones make
// size.
func (a *AccessAhead) refillLocked() {
	for !a.closed && len(a.ready)+a.filling < a.size {
		a.filling++
		go a.fill()
	}
}

func (a *AccessAhead) fill() {
	ctx, cancel := context.WithTimeout(context.Background(), accessHeaderTimeout)
	s, err := a.open(ctx)
	cancel()
	if err == nil {
		if as, ok := s.(*AccessStream); ok {
			err = as.Accepted()
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.filling--
	if err != nil {
		return
	}
	if a.closed {
		resetOrClose(s)
		return
	}
	st := &aheadStream{s: s}
	st.expiry = time.AfterFunc(a.maxAge, func() { a.expire(st) })
	a.ready = append(a.ready, st)
}

// expire drops st if no connection took it meanwhile.
func (a *AccessAhead) expire(st *aheadStream) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, r := range a.ready {
		if r == st {
			a.ready = append(a.ready[:i], a.ready[i+1:]...)
			resetOrClose(st.s)
			return
		}
	}
}

// Close resets the streams opened ahead and opens no more.
func (a *AccessAhead) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for _, st := range a.ready {
		st.expiry.Stop()
		resetOrClose(st.s)
	}
	a.ready = nil
}

// resetOrClose ends an unused stream so the peer's side ends at once.
func resetOrClose(s HalfCloser) {
	if r, ok := s.(resetter); ok {
		r.Reset()
		return
	}
	s.Close()
}
