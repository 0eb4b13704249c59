package wasm

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// A keep-alive connection between requests holds one of a service's
// places as surely as a busy one. When connections wait for a place,
// keeping idle ones open would leave the waiting ones to time out into
// 503 while nothing runs: a thousand clients that each keep their
// connection, as browsers and load generators do, would get 128 answers.
// So an idle connection gives its place up to one that waits, the way a
// server closes keep-alive connections under load; the client opens a
// new one for its next request (Go's client and browsers retry an
// idempotent request whose kept connection was closed).

// idleConns are a service's connections that are between requests, with
// when each became idle.
type idleConns struct {
	mu    sync.Mutex
	conns map[net.Conn]time.Time
}

// trackState is the service's http.Server ConnState: it keeps the set of
// idle connections, and closes a connection that goes idle while others
// wait for a place.
func (l *connLimiter) trackState(c net.Conn, state http.ConnState) {
	l.idle.mu.Lock()
	if state != http.StateIdle {
		delete(l.idle.conns, c)
		l.idle.mu.Unlock()
		return
	}
	if len(l.waiting) > 0 {
		l.idle.mu.Unlock()
		c.Close()
		return
	}
	if l.idle.conns == nil {
		l.idle.conns = map[net.Conn]time.Time{}
	}
	l.idle.conns[c] = time.Now()
	l.idle.mu.Unlock()
}

// reclaimIdle closes the connection idle the longest, if any, so that
// one waiting for a place gets it.
func (l *connLimiter) reclaimIdle() {
	l.idle.mu.Lock()
	var oldest net.Conn
	var since time.Time
	for c, t := range l.idle.conns {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	delete(l.idle.conns, oldest)
	l.idle.mu.Unlock()
	if oldest != nil {
		oldest.Close()
	}
}
