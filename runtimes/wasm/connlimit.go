package wasm

import (
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
	return newConnLimiter(ln, n)
}

// connLimiter is a listener that hands out at most cap(open) connections
// at once. One accepted beyond that is answered "503 Service Unavailable"
// with Retry-After and closed, rather than left waiting in the listen
// backlog where the client could not tell a full service from a hung one.
type connLimiter struct {
	net.Listener
	open     chan struct{}
	refusing chan struct{}
	refusal  []byte
}

func newConnLimiter(ln net.Listener, max int) *connLimiter {
	body := fmt.Sprintf("fungi: this service has its limit of %d connections open; try again in a moment\n", max)
	refusal := fmt.Sprintf("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return &connLimiter{Listener: ln, open: make(chan struct{}, max), refusing: make(chan struct{}, maxRefusing), refusal: []byte(refusal)}
}

// Accept returns the next connection within the cap, answering those
// over it on the way.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.open <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.open }}, nil
		default:
			l.refuse(c)
		}
	}
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
