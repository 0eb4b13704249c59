package component

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// wasi:sockets/tcp: see wasi_sockets.go for the policy and the bounds.

// tcpConn is a connection shared by a socket and its two streams; it closes
// when the last of them is dropped.
type tcpConn struct {
	conn    net.Conn
	refs    int
	inst    *instance
	charged int64
}

func (t *tcpConn) release() {
	if t.refs--; t.refs == 0 {
		_ = t.conn.Close()
		t.inst.budget.release(t.charged)
		closeSocket(t.inst)
	}
}

// streamsOf gives the guest a connection's two streams, children of the
// socket they belong to (as wasmtime makes them): the socket cannot be
// dropped while either lives.
func streamsOf(c *cx, conn net.Conn, socket *tcpSocket) (*tcpConn, *inputStream, *outputStream) {
	charge := int64(recvChunk * (recvChunks + 1))
	c.inst.budget.charge(charge)
	tc := &tcpConn{conn: conn, refs: 3, inst: c.inst, charged: charge}
	in := &inputStream{net: startReader(conn, c.inst.wake, idleTimeout(c)), onDrop: tc.release, parent: &socket.family}
	out := &outputStream{w: deadlineWriter{conn}, onDrop: tc.release, parent: &socket.family}
	return tc, in, out
}

type tcpState int

const (
	tcpUnbound tcpState = iota
	tcpBindStarted
	tcpBound
	tcpListenStarted
	tcpListening
	tcpConnecting
	tcpConnectReady // the dial ended; finish-connect says how
	tcpConnected
	tcpClosed
)

// tcpSocket is a wasi:sockets tcp-socket.
type tcpSocket struct {
	family // its pollables
	inst   *instance
	v6     bool
	state  tcpState
	// local is the address the guest bound (what local-address reports);
	// hostAddr is where fungi listens for it.
	local    netip.AddrPort
	hostAddr string
	ln       net.Listener
	accepted chan net.Conn
	backlog  int
	pendErr  string // an error finish-bind, finish-listen or finish-connect reports
	dial     chan dialResult
	dialed   *dialResult
	cancel   context.CancelFunc
	conn     *tcpConn
	remote   netip.AddrPort
	counted  bool // openSocket was charged
	closed   bool

	keepAlive              bool
	keepIdle, keepInterval uint64
	keepCount              uint32
	hopLimit               uint8
	recvBuf, sendBuf       uint64
}

type dialResult struct {
	conn net.Conn
	err  error
}

func (s *tcpSocket) ready() bool {
	switch s.state {
	case tcpListening:
		return len(s.accepted) > 0
	case tcpConnecting:
		if s.dialed != nil {
			return true
		}
		select {
		case r := <-s.dial:
			s.dialed = &r
			return true
		default:
			return false
		}
	}
	return true
}

func (s *tcpSocket) drop() {
	if s.closed {
		return
	}
	s.closed = true
	if s.cancel != nil {
		s.cancel()
	}
	if s.ln != nil {
		_ = s.ln.Close()
		// Connections accepted but never taken; the accept loop closes
		// the channel once the listener is closed.
		go func() {
			for conn := range s.accepted {
				_ = conn.Close()
			}
		}()
	}
	if s.dialed != nil && s.dialed.conn != nil && s.state == tcpConnectReady {
		_ = s.dialed.conn.Close()
	}
	if s.conn != nil {
		s.conn.release()
	} else if s.counted {
		closeSocket(s.inst)
	}
}

func newTCPSocket(c *cx, v6 bool) *tcpSocket {
	return &tcpSocket{inst: c.inst, v6: v6, counted: true, keepIdle: uint64(2 * time.Hour), keepInterval: uint64(75 * time.Second), keepCount: 9, hopLimit: 64, recvBuf: 128 << 10, sendBuf: 128 << 10}
}

func checkFamily(s bool, ap netip.AddrPort) bool {
	return s == ap.Addr().Is6()
}

func createTCPSocket(c *cx, a []any) []any {
	if !openSocket(c) {
		return []any{sockErr(c, "new-socket-limit")}
	}
	return []any{Variant{Val: newTCPSocket(c, a[0].(uint32) == 1)}}
}

var tcpFuncs = map[string]hostDef{
	"[method]tcp-socket.start-bind": {"func(network: borrow<network>, local-address: ip-socket-address) -> result<_,error-code>", func(c *cx, a []any) []any {
		s, ap := a[0].(*tcpSocket), liftSockAddr(a[2])
		switch {
		case s.state != tcpUnbound:
			return []any{sockErr(c, "invalid-state")}
		case !checkFamily(s.v6, ap):
			return []any{sockErr(c, "invalid-argument")}
		}
		if ap.Port() != 0 {
			host, ok := listenAddr(c, false, ap.Port())
			if !ok {
				return []any{sockErr(c, "access-denied")}
			}
			s.hostAddr = host
		}
		s.local, s.state = ap, tcpBindStarted
		return []any{Variant{}}
	}},
	"[method]tcp-socket.finish-bind": {"func() -> result<_,error-code>", func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		if s.state != tcpBindStarted {
			return []any{sockErr(c, "not-in-progress")}
		}
		s.state = tcpBound
		return []any{Variant{}}
	}},
	"[method]tcp-socket.start-listen": {"func() -> result<_,error-code>", func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		switch {
		case s.state == tcpUnbound:
			// An implicit bind to an ephemeral port: nothing the manifest lists.
			return []any{sockErr(c, "access-denied")}
		case s.state != tcpBound:
			return []any{sockErr(c, "invalid-state")}
		case s.hostAddr == "":
			return []any{sockErr(c, "access-denied")}
		}
		ln, err := net.Listen("tcp", s.hostAddr)
		s.state = tcpListenStarted
		if err != nil {
			s.pendErr = errCodeOf(err)
			if s.pendErr == "unknown" {
				s.pendErr = "address-in-use"
			}
			fmt.Fprintf(c.inst.wasi.stderr, "fungi: wasi:sockets: listen on %s (the guest's port %d): %v\n", s.hostAddr, s.local.Port(), err)
			return []any{Variant{}}
		}
		s.ln = ln
		n := s.backlog
		if n <= 0 || n > maxAcceptQueue {
			n = maxAcceptQueue
		}
		s.accepted = make(chan net.Conn, n)
		wake := c.inst.wake
		go func() {
			defer close(s.accepted)
			for {
				conn, err := ln.Accept()
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						continue
					}
					return
				}
				s.accepted <- conn
				notify(wake)
			}
		}()
		return []any{Variant{}}
	}},
	"[method]tcp-socket.finish-listen": {"func() -> result<_,error-code>", func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		if s.state != tcpListenStarted {
			return []any{sockErr(c, "not-in-progress")}
		}
		if s.pendErr != "" {
			e := s.pendErr
			s.pendErr, s.state = "", tcpClosed
			return []any{sockErr(c, e)}
		}
		s.state = tcpListening
		return []any{Variant{}}
	}},
	"[method]tcp-socket.accept": {"func() -> result<tuple<tcp-socket,input-stream,output-stream>,error-code>", func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		if s.state != tcpListening {
			return []any{sockErr(c, "invalid-state")}
		}
		var conn net.Conn
		select {
		case cn, ok := <-s.accepted:
			if !ok {
				return []any{sockErr(c, "connection-aborted")}
			}
			conn = cn
		default:
			return []any{sockErr(c, "would-block")}
		}
		if !openSocket(c) {
			_ = conn.Close()
			return []any{sockErr(c, "new-socket-limit")}
		}
		ns := newTCPSocket(c, s.v6)
		ns.counted = false
		ns.state, ns.local = tcpConnected, s.local
		ns.remote = addrPortOf(conn.RemoteAddr())
		tc, in, out := streamsOf(c, conn, ns)
		ns.conn = tc
		return []any{Variant{Val: []any{ns, in, out}}}
	}},
	"[method]tcp-socket.start-connect": {"func(network: borrow<network>, remote-address: ip-socket-address) -> result<_,error-code>", func(c *cx, a []any) []any {
		s, ap := a[0].(*tcpSocket), liftSockAddr(a[2])
		switch {
		case s.state != tcpUnbound && s.state != tcpBound:
			return []any{sockErr(c, "invalid-state")}
		case s.hostAddr != "":
			return []any{sockErr(c, "invalid-state")} // bound to listen
		case !checkFamily(s.v6, ap) || ap.Port() == 0 || ap.Addr().IsUnspecified() || ap.Addr().IsMulticast():
			return []any{sockErr(c, "invalid-argument")}
		case !connectAllowed(c, ap):
			return []any{sockErr(c, "access-denied")}
		}
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		s.cancel, s.remote = cancel, ap
		s.dial = make(chan dialResult, 1)
		s.state = tcpConnecting
		wake := c.inst.wake
		go func() {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", ap.String())
			s.dial <- dialResult{conn, err}
			notify(wake)
		}()
		return []any{Variant{}}
	}},
	"[method]tcp-socket.finish-connect": {"func() -> result<tuple<input-stream,output-stream>,error-code>", func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		if s.state != tcpConnecting && s.state != tcpConnectReady {
			return []any{sockErr(c, "not-in-progress")}
		}
		if !s.ready() {
			return []any{sockErr(c, "would-block")}
		}
		s.state = tcpConnectReady
		r := s.dialed
		s.cancel()
		if r.err != nil {
			s.state = tcpClosed
			return []any{sockErr(c, errCodeOf(r.err))}
		}
		s.state = tcpConnected
		s.counted = false // the connection carries the socket's charge now
		s.local = addrPortOf(r.conn.LocalAddr())
		tc, in, out := streamsOf(c, r.conn, s)
		s.conn = tc
		return []any{Variant{Val: []any{in, out}}}
	}},
	"[method]tcp-socket.subscribe": {"func() -> pollable", func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		return []any{&pollable{src: s, parent: &s.family}}
	}},
	"[method]tcp-socket.local-address": {"func() -> result<ip-socket-address,error-code>", func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		if s.state == tcpUnbound || s.state == tcpBindStarted || s.state == tcpClosed {
			return []any{sockErr(c, "invalid-state")}
		}
		return []any{Variant{Val: lowerSockAddr(s.local, s.v6)}}
	}},
	"[method]tcp-socket.remote-address": {"func() -> result<ip-socket-address,error-code>", func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		if s.state != tcpConnected {
			return []any{sockErr(c, "invalid-state")}
		}
		return []any{Variant{Val: lowerSockAddr(s.remote, s.v6)}}
	}},
	"[method]tcp-socket.is-listening": {"func() -> bool", func(c *cx, a []any) []any { return []any{a[0].(*tcpSocket).state == tcpListening} }},
	"[method]tcp-socket.address-family": {"func() -> ip-address-family", func(c *cx, a []any) []any {
		if a[0].(*tcpSocket).v6 {
			return []any{uint32(1)}
		}
		return []any{uint32(0)}
	}},
	"[method]tcp-socket.set-listen-backlog-size": {"func(value: u64) -> result<_,error-code>", func(c *cx, a []any) []any {
		s, n := a[0].(*tcpSocket), a[1].(uint64)
		if n == 0 {
			return []any{sockErr(c, "invalid-argument")}
		}
		if s.state == tcpConnecting || s.state == tcpConnected {
			return []any{sockErr(c, "invalid-state")}
		}
		s.backlog = int(min(n, maxAcceptQueue))
		return []any{Variant{}}
	}},
	"[method]tcp-socket.keep-alive-enabled":     {"func() -> result<bool,error-code>", func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).keepAlive}} }},
	"[method]tcp-socket.set-keep-alive-enabled": {"func(value: bool) -> result<_,error-code>", func(c *cx, a []any) []any { a[0].(*tcpSocket).keepAlive = a[1].(bool); return []any{Variant{}} }},
	"[method]tcp-socket.keep-alive-idle-time":   {"func() -> result<duration,error-code>", func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).keepIdle}} }},
	"[method]tcp-socket.set-keep-alive-idle-time": {"func(value: duration) -> result<_,error-code>", func(c *cx, a []any) []any {
		return setNonZero(c, a[1].(uint64), &a[0].(*tcpSocket).keepIdle)
	}},
	"[method]tcp-socket.keep-alive-interval": {"func() -> result<duration,error-code>", func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).keepInterval}} }},
	"[method]tcp-socket.set-keep-alive-interval": {"func(value: duration) -> result<_,error-code>", func(c *cx, a []any) []any {
		return setNonZero(c, a[1].(uint64), &a[0].(*tcpSocket).keepInterval)
	}},
	"[method]tcp-socket.keep-alive-count": {"func() -> result<u32,error-code>", func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).keepCount}} }},
	"[method]tcp-socket.set-keep-alive-count": {"func(value: u32) -> result<_,error-code>", func(c *cx, a []any) []any {
		if a[1].(uint32) == 0 {
			return []any{sockErr(c, "invalid-argument")}
		}
		a[0].(*tcpSocket).keepCount = a[1].(uint32)
		return []any{Variant{}}
	}},
	"[method]tcp-socket.hop-limit": {"func() -> result<u8,error-code>", func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).hopLimit}} }},
	"[method]tcp-socket.set-hop-limit": {"func(value: u8) -> result<_,error-code>", func(c *cx, a []any) []any {
		if a[1].(uint8) == 0 {
			return []any{sockErr(c, "invalid-argument")}
		}
		a[0].(*tcpSocket).hopLimit = a[1].(uint8)
		return []any{Variant{}}
	}},
	"[method]tcp-socket.receive-buffer-size": {"func() -> result<u64,error-code>", func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).recvBuf}} }},
	"[method]tcp-socket.set-receive-buffer-size": {"func(value: u64) -> result<_,error-code>", func(c *cx, a []any) []any {
		return setNonZero(c, a[1].(uint64), &a[0].(*tcpSocket).recvBuf)
	}},
	"[method]tcp-socket.send-buffer-size": {"func() -> result<u64,error-code>", func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).sendBuf}} }},
	"[method]tcp-socket.set-send-buffer-size": {"func(value: u64) -> result<_,error-code>", func(c *cx, a []any) []any {
		return setNonZero(c, a[1].(uint64), &a[0].(*tcpSocket).sendBuf)
	}},
	"[method]tcp-socket.shutdown": {"func(shutdown-type: shutdown-type) -> result<_,error-code>", func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		if s.state != tcpConnected || s.conn == nil {
			return []any{sockErr(c, "invalid-state")}
		}
		tc, ok := s.conn.conn.(*net.TCPConn)
		if !ok {
			return []any{Variant{}}
		}
		switch a[1].(uint32) {
		case 0:
			_ = tc.CloseRead()
		case 1:
			_ = tc.CloseWrite()
		default:
			_ = tc.CloseRead()
			_ = tc.CloseWrite()
		}
		return []any{Variant{}}
	}},
}

func setNonZero(c *cx, v uint64, dst *uint64) []any {
	if v == 0 {
		return []any{sockErr(c, "invalid-argument")}
	}
	*dst = v
	return []any{Variant{}}
}
