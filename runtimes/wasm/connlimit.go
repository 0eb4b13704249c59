package wasm

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// The HTTP server of a wasm service, module or component, holds a
// bounded number of connections, each for a bounded time: without that,
// idle keep-alive connections and clients that open many and send nothing
// each keep a file descriptor of the daemon's for as long as they like.
const (
	// defaultIdleTimeout closes a keep-alive connection with no request
	// for a minute. Browsers keep theirs open longer (Firefox 115 s,
	// Chromium 300 s), so without it idle tabs would hold the service's
	// connections; a new connection over loopback costs far less than a
	// millisecond. Shorter than the dashboard's 2 min because a service
	// is reached by every peer the node serves, the dashboard by its
	// user alone.
	defaultIdleTimeout = time.Minute
	// defaultMaxConnections is the connections one service holds open
	// at once: 8 for each of the default 16 requests it runs at once,
	// room for keep-alive connections between requests. One more is
	// answered 503.
	defaultMaxConnections = 128
	// readHeaderTimeout is how long a client has to send a request's
	// header once its connection is open or its last request answered.
	readHeaderTimeout = 10 * time.Second
	// maxHeaderBytes caps a request's header, as the dashboard's.
	maxHeaderBytes = 64 << 10
	// maxRefusing is how many refused connections are answered at once;
	// more are closed without an answer, so refusing holds no more
	// descriptors than this.
	maxRefusing = 16
	// refuseWithin bounds the answer to a refused connection.
	refuseWithin = 2 * time.Second
)

// httpServer is the server of a wasm service: h behind the timeouts and
// header cap above. ReadTimeout bounds a request's header and body
// together by the time the request may run (a body that dribbles in
// would otherwise hold a slot past the request timeout); it is no shorter
// than the request timeout the handler already applies after the header,
// so no request that was served before is cut now.
func (p *Provider) httpServer(h http.Handler) *http.Server {
	idle := p.cfg.IdleTimeout
	if idle <= 0 {
		idle = defaultIdleTimeout
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readHeaderTimeout + p.cfg.RequestTimeout,
		IdleTimeout:       idle,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// limitConns wraps a service's listener so that at most
// cfg.MaxConnections of its connections are open at once.
func (p *Provider) limitConns(ln net.Listener) net.Listener {
	n := p.cfg.MaxConnections
	if n <= 0 {
		n = defaultMaxConnections
	}
	queued, wait := p.cfg.MaxQueued, p.cfg.QueueWait
	if queued == 0 {
		queued = defaultMaxQueued
	}
	if wait <= 0 {
		wait = defaultQueueWait
	}
	return newConnLimiter(ln, n, max(queued, 0), wait)
}

// connLimiter is a listener that hands out at most cap(open) connections
// at once. One accepted beyond that waits for a place (at most
// cap(waiting) of them, each at most wait), as a request waits for a
// slot, so a burst is served rather than refused; one that finds no place
// is answered "503 Service Unavailable" with Retry-After and closed,
// rather than left in the listen backlog where the client could not tell
// a full service from a hung one.
type connLimiter struct {
	net.Listener
	open     chan struct{}
	waiting  chan struct{}
	wait     time.Duration
	refusing chan struct{}
	refusal  []byte

	// accepted carries what the accept loop took from the listener;
	// ready carries connections that waited and got a place.
	accepted  chan acceptResult
	ready     chan net.Conn
	startOnce sync.Once
	closed    chan struct{}
	closeOnce sync.Once
	idle      idleConns // see connidle.go
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newConnLimiter(ln net.Listener, max, maxWaiting int, wait time.Duration) *connLimiter {
	body := fmt.Sprintf("fungi: this service has its limit of %d connections open; try again in a moment\n", max)
	refusal := fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return &connLimiter{Listener: ln, open: make(chan struct{}, max), waiting: make(chan struct{}, maxWaiting), wait: wait,
		refusing: make(chan struct{}, maxRefusing), refusal: []byte(refusal),
		accepted: make(chan acceptResult), ready: make(chan net.Conn), closed: make(chan struct{})}
}

// Accept returns the next connection within the cap: one just accepted
// that found a place, or one that waited for it.
func (l *connLimiter) Accept() (net.Conn, error) {
	l.startOnce.Do(func() { go l.acceptLoop() })
	for {
		select {
		case c := <-l.ready:
			return c, nil
		case r := <-l.accepted:
			if r.err != nil {
				return nil, r.err
			}
			select {
			case l.open <- struct{}{}:
				return l.limited(r.c), nil
			default:
				l.queue(r.c)
			}
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
}

// acceptLoop takes connections from the listener until it fails; Accept
// hands them out. It ends with the listener.
func (l *connLimiter) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.accepted <- acceptResult{c, err}:
		case <-l.closed:
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // temporary; the server retries too
			}
			return
		}
	}
}

// queue lets c wait for a place, in the background, up to l.wait; with
// no room to wait, or no place in time, it is refused.
func (l *connLimiter) queue(c net.Conn) {
	select {
	case l.waiting <- struct{}{}:
	default:
		l.refuse(c)
		return
	}
	l.reclaimIdle()
	go func() {
		defer func() { <-l.waiting }()
		timer := time.NewTimer(l.wait)
		defer timer.Stop()
		select {
		case l.open <- struct{}{}:
		case <-timer.C:
			l.refuse(c)
			return
		case <-l.closed:
			c.Close()
			return
		}
		lc := l.limited(c)
		select {
		case l.ready <- lc:
		case <-l.closed:
			lc.Close()
		}
	}()
}

func (l *connLimiter) limited(c net.Conn) net.Conn {
	return &limitedConn{Conn: c, release: func() { <-l.open }}
}

// Close closes the listener and lets go of the connections still waiting.
func (l *connLimiter) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// refuse answers c 503 and closes it, in the background and within
// refuseWithin, so a client that never reads cannot stall Accept. It
// reads what the client sent before closing: closing with unread data
// would reset the connection and could discard the answer before the
// client reads it.
func (l *connLimiter) refuse(c net.Conn) {
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(refuseWithin))
		if _, err := c.Write(l.refusal); err != nil {
			return
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, maxHeaderBytes))
	}()
}

// limitedConn gives its place back once, when closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// CloseWrite lets the server half-close the connection before closing
// it, as it does a bare TCP connection's.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
