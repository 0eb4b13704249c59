package component

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// wasi:sockets 0.2.x: TCP, UDP, ip-name-lookup and instance-network, denied
// by default as wasmtime denies them without -S inherit-network. A guest
// may create sockets, but it may bind only the ports its manifest lists
// (fungi binds the service's host port on 127.0.0.1 in its place, as every
// service port is bound), connect and send only where SocketPolicy.Connect
// says, and resolve only the names that list holds. Everything else
// answers access-denied. A component that imports the interfaces and never
// calls them (the .NET and JavaScript toolchains import them all) links and
// runs as any other.
//
// Every socket, and the buffer of bytes and datagrams received for it, is
// charged to the instance's host budget; connects, lookups and writes have
// deadlines, and a connection that receives nothing for IdleTimeout ends.

// SocketPolicy is what a component may do with wasi:sockets.
type SocketPolicy struct {
	// TCP maps a port the guest listens on to the host address fungi
	// listens on instead ("127.0.0.1:8080"); a port not listed cannot be
	// listened on.
	TCP map[uint16]string
	// UDP maps a port the guest binds a UDP socket to, likewise.
	UDP map[uint16]string
	// Connect lists the host:port pairs the guest may connect to (TCP) or
	// send datagrams to (UDP); a host is an address or a name, and a name
	// is resolved through Lookup when the guest asks ip-name-lookup for it.
	Connect []string
	// Lookup resolves a name the guest may look up; nil uses the system's
	// resolver. Tests inject their own, so that no test asks real DNS.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
	// IdleTimeout ends a connection that received nothing for this long;
	// zero is defaultIdleTimeout.
	IdleTimeout time.Duration
}

// Bounds and deadlines on what a guest's sockets cost.
const (
	// maxSockets bounds the sockets one instance holds open at once.
	maxSockets = 256
	// socketCost is what one socket is charged, besides its handle: the Go
	// connection, its goroutine and the kernel's side.
	socketCost = 8 << 10
	// recvChunk is one read from a connection; recvChunks of them may wait
	// for the guest, so a connection is charged recvChunk*(recvChunks+1).
	recvChunk  = 16 << 10
	recvChunks = 3
	// maxAcceptQueue bounds the connections accepted for a listener that
	// the guest has not taken yet; more wait in the kernel's backlog.
	maxAcceptQueue = 64
	// maxDatagram is the largest datagram received; udpQueue bounds how
	// many wait for the guest (more are dropped, as UDP may).
	maxDatagram = 64 << 10
	udpQueue    = 8
	// maxDatagramsPerCall bounds one receive or send.
	maxDatagramsPerCall = 64

	connectTimeout     = 10 * time.Second
	lookupTimeout      = 5 * time.Second
	socketWriteTimeout = 30 * time.Second
	defaultIdleTimeout = 15 * time.Minute
)

// network is the wasi:sockets network resource: instance-network's only
// value, the capability every bind and connect names.
type network struct{}

// sockState is one instance's socket bookkeeping.
type sockState struct {
	open int
	// resolved are the addresses a permitted name resolved to, with the
	// ports listed for that name: the guest may connect to those too.
	resolved map[netip.AddrPort]bool
}

func (w *wasiState) sockets() *sockState {
	if w.sock == nil {
		w.sock = &sockState{resolved: map[netip.AddrPort]bool{}}
	}
	return w.sock
}

// openSocket counts and charges one more socket, or says why not.
func openSocket(c *cx) bool {
	s := c.inst.wasi.sockets()
	if s.open >= maxSockets {
		return false
	}
	c.inst.budget.charge(socketCost)
	s.open++
	return true
}

func closeSocket(inst *instance) {
	inst.wasi.sockets().open--
	inst.budget.release(socketCost)
}

// sockErr is err(error-code label) of the function's result type.
func sockErr(c *cx, label string) Variant {
	return Variant{Case: 1, Val: caseIndex(c.ft.results[0].cases[1], label)}
}

// errCodeOf maps a Go network error to a wasi:sockets error-code label.
func errCodeOf(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection-refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection-reset"
	case errors.Is(err, syscall.ECONNABORTED):
		return "connection-aborted"
	case errors.Is(err, syscall.EADDRINUSE):
		return "address-in-use"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "address-not-bindable"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "remote-unreachable"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "access-denied"
	}
	return "unknown"
}

// Addresses as the guest sees them: ip-socket-address is a variant of
// ipv4(record{port, address: tuple of 4 u8}) and ipv6(record{port,
// flow-info, address: tuple of 8 u16, scope-id}).

func liftSockAddr(v any) netip.AddrPort {
	sa := v.(Variant)
	rec := sa.Val.([]any)
	if sa.Case == 0 {
		t := rec[1].([]any)
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{t[0].(uint8), t[1].(uint8), t[2].(uint8), t[3].(uint8)}), rec[0].(uint16))
	}
	t := rec[2].([]any)
	var b [16]byte
	for i := range 8 {
		x := t[i].(uint16)
		b[2*i], b[2*i+1] = byte(x>>8), byte(x)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(b), rec[0].(uint16))
}

func lowerIP(a netip.Addr) Variant {
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		return Variant{Case: 0, Val: []any{b[0], b[1], b[2], b[3]}}
	}
	b := a.As16()
	t := make([]any, 8)
	for i := range t {
		t[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return Variant{Case: 1, Val: t}
}

func lowerSockAddr(ap netip.AddrPort, v6 bool) Variant {
	ip := lowerIP(ap.Addr())
	if !v6 && ip.Case == 0 {
		return Variant{Case: 0, Val: []any{ap.Port(), ip.Val}}
	}
	if ip.Case == 0 { // an IPv4 address on an IPv6 socket: mapped
		ip = lowerIP(netip.AddrFrom16(ap.Addr().As16()))
	}
	return Variant{Case: 1, Val: []any{ap.Port(), uint32(0), ip.Val, uint32(0)}}
}

func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort()
	case *net.UDPAddr:
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// connectAllowed says whether the policy lets the guest reach ap.
func connectAllowed(c *cx, ap netip.AddrPort) bool {
	p := c.inst.wasi.cfg.Sockets
	if p == nil {
		return false
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if c.inst.wasi.sockets().resolved[ap] {
		return true
	}
	for _, entry := range p.Connect {
		h, port, err := net.SplitHostPort(entry)
		if err != nil || port != strconv.Itoa(int(ap.Port())) {
			continue
		}
		if a, err := netip.ParseAddr(h); err == nil && a.Unmap() == ap.Addr() {
			return true
		}
	}
	return false
}

// listenAddr is the host address a guest's bind to port maps to.
func listenAddr(c *cx, udp bool, port uint16) (string, bool) {
	p := c.inst.wasi.cfg.Sockets
	if p == nil {
		return "", false
	}
	m := p.TCP
	if udp {
		m = p.UDP
	}
	a, ok := m[port]
	return a, ok
}

func idleTimeout(c *cx) time.Duration {
	if p := c.inst.wasi.cfg.Sockets; p != nil && p.IdleTimeout > 0 {
		return p.IdleTimeout
	}
	return defaultIdleTimeout
}

// connReader receives a connection's bytes on its own goroutine, at most
// recvChunks chunks ahead of the guest, so that a read never blocks the
// guest unless it asks to block.
type connReader struct {
	chunks  chan []byte // closed after the last chunk; err says why
	err     error       // set before chunks is closed
	pending []byte
	eof     bool
	wake    chan struct{}
}

func startReader(conn net.Conn, wake chan struct{}, idle time.Duration) *connReader {
	r := &connReader{chunks: make(chan []byte, recvChunks), wake: wake}
	go func() {
		defer close(r.chunks)
		defer notify(wake)
		for {
			buf := make([]byte, recvChunk)
			_ = conn.SetReadDeadline(time.Now().Add(idle))
			n, err := conn.Read(buf)
			if n > 0 {
				r.chunks <- buf[:n]
				notify(wake)
			}
			if err != nil {
				r.err = err
				return
			}
		}
	}()
	return r
}

// ready reports whether a read would return bytes or the stream's end.
func (r *connReader) ready() bool {
	if len(r.pending) > 0 || r.eof {
		return true
	}
	select {
	case b, ok := <-r.chunks:
		if !ok {
			r.eof = true
		} else {
			r.pending = b
		}
		return true
	default:
		return false
	}
}

func (r *connReader) read(c *cx, n uint64, blocking bool) any {
	for blocking && !r.ready() {
		waitEvent(c, nil)
	}
	if !r.ready() || n == 0 {
		return Variant{Val: []byte{}}
	}
	if len(r.pending) == 0 {
		if r.err == nil || errors.Is(r.err, io.EOF) || errors.Is(r.err, net.ErrClosed) {
			return streamErr(nil)
		}
		return streamErr(r.err)
	}
	k := min(uint64(len(r.pending)), n, maxRead)
	c.hold(int64(k))
	out := append([]byte(nil), r.pending[:k]...)
	r.pending = r.pending[k:]
	return Variant{Val: out}
}

// deadlineWriter bounds every write to a connection.
type deadlineWriter struct{ conn net.Conn }

func (w deadlineWriter) Write(p []byte) (int, error) {
	_ = w.conn.SetWriteDeadline(time.Now().Add(socketWriteTimeout))
	return w.conn.Write(p)
}

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

var tcpFuncs = map[string]hostFunc{
	"[method]tcp-socket.start-bind": func(c *cx, a []any) []any {
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
	},
	"[method]tcp-socket.finish-bind": func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		if s.state != tcpBindStarted {
			return []any{sockErr(c, "not-in-progress")}
		}
		s.state = tcpBound
		return []any{Variant{}}
	},
	"[method]tcp-socket.start-listen": func(c *cx, a []any) []any {
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
	},
	"[method]tcp-socket.finish-listen": func(c *cx, a []any) []any {
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
	},
	"[method]tcp-socket.accept": func(c *cx, a []any) []any {
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
	},
	"[method]tcp-socket.start-connect": func(c *cx, a []any) []any {
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
	},
	"[method]tcp-socket.finish-connect": func(c *cx, a []any) []any {
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
	},
	"[method]tcp-socket.subscribe": func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		return []any{&pollable{src: s, parent: &s.family}}
	},
	"[method]tcp-socket.local-address": func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		if s.state == tcpUnbound || s.state == tcpBindStarted || s.state == tcpClosed {
			return []any{sockErr(c, "invalid-state")}
		}
		return []any{Variant{Val: lowerSockAddr(s.local, s.v6)}}
	},
	"[method]tcp-socket.remote-address": func(c *cx, a []any) []any {
		s := a[0].(*tcpSocket)
		if s.state != tcpConnected {
			return []any{sockErr(c, "invalid-state")}
		}
		return []any{Variant{Val: lowerSockAddr(s.remote, s.v6)}}
	},
	"[method]tcp-socket.is-listening": func(c *cx, a []any) []any { return []any{a[0].(*tcpSocket).state == tcpListening} },
	"[method]tcp-socket.address-family": func(c *cx, a []any) []any {
		if a[0].(*tcpSocket).v6 {
			return []any{uint32(1)}
		}
		return []any{uint32(0)}
	},
	"[method]tcp-socket.set-listen-backlog-size": func(c *cx, a []any) []any {
		s, n := a[0].(*tcpSocket), a[1].(uint64)
		if n == 0 {
			return []any{sockErr(c, "invalid-argument")}
		}
		if s.state == tcpConnecting || s.state == tcpConnected {
			return []any{sockErr(c, "invalid-state")}
		}
		s.backlog = int(min(n, maxAcceptQueue))
		return []any{Variant{}}
	},
	"[method]tcp-socket.keep-alive-enabled":     func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).keepAlive}} },
	"[method]tcp-socket.set-keep-alive-enabled": func(c *cx, a []any) []any { a[0].(*tcpSocket).keepAlive = a[1].(bool); return []any{Variant{}} },
	"[method]tcp-socket.keep-alive-idle-time":   func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).keepIdle}} },
	"[method]tcp-socket.set-keep-alive-idle-time": func(c *cx, a []any) []any {
		return setNonZero(c, a[1].(uint64), &a[0].(*tcpSocket).keepIdle)
	},
	"[method]tcp-socket.keep-alive-interval": func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).keepInterval}} },
	"[method]tcp-socket.set-keep-alive-interval": func(c *cx, a []any) []any {
		return setNonZero(c, a[1].(uint64), &a[0].(*tcpSocket).keepInterval)
	},
	"[method]tcp-socket.keep-alive-count": func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).keepCount}} },
	"[method]tcp-socket.set-keep-alive-count": func(c *cx, a []any) []any {
		if a[1].(uint32) == 0 {
			return []any{sockErr(c, "invalid-argument")}
		}
		a[0].(*tcpSocket).keepCount = a[1].(uint32)
		return []any{Variant{}}
	},
	"[method]tcp-socket.hop-limit": func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).hopLimit}} },
	"[method]tcp-socket.set-hop-limit": func(c *cx, a []any) []any {
		if a[1].(uint8) == 0 {
			return []any{sockErr(c, "invalid-argument")}
		}
		a[0].(*tcpSocket).hopLimit = a[1].(uint8)
		return []any{Variant{}}
	},
	"[method]tcp-socket.receive-buffer-size": func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).recvBuf}} },
	"[method]tcp-socket.set-receive-buffer-size": func(c *cx, a []any) []any {
		return setNonZero(c, a[1].(uint64), &a[0].(*tcpSocket).recvBuf)
	},
	"[method]tcp-socket.send-buffer-size": func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*tcpSocket).sendBuf}} },
	"[method]tcp-socket.set-send-buffer-size": func(c *cx, a []any) []any {
		return setNonZero(c, a[1].(uint64), &a[0].(*tcpSocket).sendBuf)
	},
	"[method]tcp-socket.shutdown": func(c *cx, a []any) []any {
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
	},
}

func setNonZero(c *cx, v uint64, dst *uint64) []any {
	if v == 0 {
		return []any{sockErr(c, "invalid-argument")}
	}
	*dst = v
	return []any{Variant{}}
}

// UDP.

type udpState int

const (
	udpUnbound udpState = iota
	udpBindStarted
	udpBound
)

// udpSocket is a wasi:sockets udp-socket.
type udpSocket struct {
	family // its pollables
	// dgrams counts the live datagram streams, children too: a new
	// stream call needs the previous pair dropped, a pollable need not be.
	dgrams family
	inst   *instance
	v6     bool
	state  udpState
	local  netip.AddrPort
	conn   *net.UDPConn
	// remote, when set, is the only peer: stream(some(addr)).
	remote   netip.AddrPort
	recv     chan datagram
	hopLimit uint8
	closed   bool
	charged  int64
}

type datagram struct {
	data []byte
	from netip.AddrPort
}

func (s *udpSocket) drop() {
	if s.closed {
		return
	}
	s.closed = true
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.inst.budget.release(s.charged)
	closeSocket(s.inst)
}

// incomingDatagrams and outgoingDatagrams are a UDP socket's two streams.
type incomingDatagrams struct {
	family // its pollables
	s      *udpSocket
}

type outgoingDatagrams struct {
	family // its pollables
	s      *udpSocket
}

func (d *incomingDatagrams) childOf() *family { return &d.s.dgrams }
func (d *outgoingDatagrams) childOf() *family { return &d.s.dgrams }

// liveChildren counts both kinds of child: the socket cannot be dropped
// while a pollable or a datagram stream of it lives.
func (s *udpSocket) liveChildren() int   { return s.family.live + s.dgrams.live }
func (d *incomingDatagrams) ready() bool { return len(d.s.recv) > 0 }

func createUDPSocket(c *cx, a []any) []any {
	if !openSocket(c) {
		return []any{sockErr(c, "new-socket-limit")}
	}
	return []any{Variant{Val: &udpSocket{inst: c.inst, v6: a[0].(uint32) == 1, hopLimit: 64}}}
}

var udpFuncs = map[string]hostFunc{
	"[method]udp-socket.start-bind": func(c *cx, a []any) []any {
		s, ap := a[0].(*udpSocket), liftSockAddr(a[2])
		switch {
		case s.state != udpUnbound:
			return []any{sockErr(c, "invalid-state")}
		case !checkFamily(s.v6, ap):
			return []any{sockErr(c, "invalid-argument")}
		}
		host := "127.0.0.1:0" // a client socket: an ephemeral port, loopback only
		if s.v6 {
			host = "[::1]:0"
		}
		if ap.Port() != 0 {
			h, ok := listenAddr(c, true, ap.Port())
			if !ok {
				return []any{sockErr(c, "access-denied")}
			}
			host = h
		}
		if p := c.inst.wasi.cfg.Sockets; ap.Port() == 0 && (p == nil || len(p.Connect) == 0) {
			return []any{sockErr(c, "access-denied")}
		}
		ua, err := net.ResolveUDPAddr("udp", host)
		if err != nil {
			return []any{sockErr(c, "address-not-bindable")}
		}
		conn, err := net.ListenUDP("udp", ua)
		if err != nil {
			return []any{sockErr(c, errCodeOf(err))}
		}
		s.charged = udpQueue * maxDatagram / 4
		c.inst.budget.charge(s.charged)
		s.conn, s.state = conn, udpBindStarted
		s.local = ap
		if ap.Port() == 0 {
			s.local = netip.AddrPortFrom(ap.Addr(), addrPortOf(conn.LocalAddr()).Port())
		}
		s.recv = make(chan datagram, udpQueue)
		wake := c.inst.wake
		go func() {
			buf := make([]byte, maxDatagram)
			for {
				n, from, err := conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				d := datagram{data: append([]byte(nil), buf[:n]...), from: from}
				select {
				case s.recv <- d:
					notify(wake)
				default: // the guest is behind: drop, as UDP may
				}
			}
		}()
		return []any{Variant{}}
	},
	"[method]udp-socket.finish-bind": func(c *cx, a []any) []any {
		s := a[0].(*udpSocket)
		if s.state != udpBindStarted {
			return []any{sockErr(c, "not-in-progress")}
		}
		s.state = udpBound
		return []any{Variant{}}
	},
	"[method]udp-socket.stream": func(c *cx, a []any) []any {
		s := a[0].(*udpSocket)
		if s.state != udpBound {
			return []any{sockErr(c, "invalid-state")}
		}
		if s.dgrams.live > 0 {
			trapf("udp-socket.stream called while the streams of the previous call live")
		}
		s.remote = netip.AddrPort{}
		if o := a[1].(Variant); o.Case == 1 {
			ap := liftSockAddr(o.Val)
			if !connectAllowed(c, ap) {
				return []any{sockErr(c, "access-denied")}
			}
			s.remote = ap
		}
		return []any{Variant{Val: []any{&incomingDatagrams{s: s}, &outgoingDatagrams{s: s}}}}
	},
	"[method]udp-socket.local-address": func(c *cx, a []any) []any {
		s := a[0].(*udpSocket)
		if s.state == udpUnbound {
			return []any{sockErr(c, "invalid-state")}
		}
		return []any{Variant{Val: lowerSockAddr(s.local, s.v6)}}
	},
	"[method]udp-socket.remote-address": func(c *cx, a []any) []any {
		s := a[0].(*udpSocket)
		if !s.remote.IsValid() {
			return []any{sockErr(c, "invalid-state")}
		}
		return []any{Variant{Val: lowerSockAddr(s.remote, s.v6)}}
	},
	"[method]udp-socket.address-family": func(c *cx, a []any) []any {
		if a[0].(*udpSocket).v6 {
			return []any{uint32(1)}
		}
		return []any{uint32(0)}
	},
	"[method]udp-socket.unicast-hop-limit": func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*udpSocket).hopLimit}} },
	"[method]udp-socket.set-unicast-hop-limit": func(c *cx, a []any) []any {
		if a[1].(uint8) == 0 {
			return []any{sockErr(c, "invalid-argument")}
		}
		a[0].(*udpSocket).hopLimit = a[1].(uint8)
		return []any{Variant{}}
	},
	"[method]udp-socket.receive-buffer-size":     func(c *cx, a []any) []any { return []any{Variant{Val: uint64(maxDatagram * udpQueue)}} },
	"[method]udp-socket.set-receive-buffer-size": func(c *cx, a []any) []any { return udpBufferSize(c, a) },
	"[method]udp-socket.send-buffer-size":        func(c *cx, a []any) []any { return []any{Variant{Val: uint64(maxDatagram * udpQueue)}} },
	"[method]udp-socket.set-send-buffer-size":    func(c *cx, a []any) []any { return udpBufferSize(c, a) },
	"[method]udp-socket.subscribe": func(c *cx, a []any) []any {
		return []any{&pollable{parent: &a[0].(*udpSocket).family}}
	},
	"[method]incoming-datagram-stream.receive": func(c *cx, a []any) []any {
		d, max := a[0].(*incomingDatagrams), min(a[1].(uint64), maxDatagramsPerCall)
		out := []any{}
		for uint64(len(out)) < max {
			select {
			case dg := <-d.s.recv:
				if d.s.remote.IsValid() && dg.from != d.s.remote {
					continue
				}
				c.hold(int64(len(dg.data)) + listElemCost)
				out = append(out, []any{dg.data, lowerSockAddr(dg.from, d.s.v6)})
			default:
				return []any{Variant{Val: out}}
			}
		}
		return []any{Variant{Val: out}}
	},
	"[method]incoming-datagram-stream.subscribe": func(c *cx, a []any) []any {
		d := a[0].(*incomingDatagrams)
		return []any{&pollable{src: d, parent: &d.family}}
	},
	"[method]outgoing-datagram-stream.check-send": func(c *cx, a []any) []any {
		return []any{Variant{Val: uint64(maxDatagramsPerCall)}}
	},
	"[method]outgoing-datagram-stream.send": func(c *cx, a []any) []any {
		d, dgs := a[0].(*outgoingDatagrams), a[1].([]any)
		if len(dgs) > maxDatagramsPerCall {
			trapf("sent %d datagrams, more than check-send permitted", len(dgs))
		}
		for i, x := range dgs {
			f := x.([]any)
			data, to := f[0].([]byte), d.s.remote
			if o := f[1].(Variant); o.Case == 1 {
				ap := liftSockAddr(o.Val)
				if d.s.remote.IsValid() && ap != d.s.remote {
					return sentOrErr(c, i, "invalid-argument")
				}
				to = ap
			}
			switch {
			case !to.IsValid():
				return sentOrErr(c, i, "invalid-argument")
			case !connectAllowed(c, to):
				return sentOrErr(c, i, "access-denied")
			case len(data) > maxDatagram:
				return sentOrErr(c, i, "datagram-too-large")
			}
			_ = d.s.conn.SetWriteDeadline(time.Now().Add(socketWriteTimeout))
			if _, err := d.s.conn.WriteToUDPAddrPort(data, to); err != nil {
				return sentOrErr(c, i, errCodeOf(err))
			}
		}
		return []any{Variant{Val: uint64(len(dgs))}}
	},
	"[method]outgoing-datagram-stream.subscribe": func(c *cx, a []any) []any {
		return []any{&pollable{parent: &a[0].(*outgoingDatagrams).family}}
	},
}

// sentOrErr is send's answer when datagram i failed: how many went, or the
// error when none did.
func sentOrErr(c *cx, i int, label string) []any {
	if i > 0 {
		return []any{Variant{Val: uint64(i)}}
	}
	return []any{sockErr(c, label)}
}

func udpBufferSize(c *cx, a []any) []any {
	if a[1].(uint64) == 0 {
		return []any{sockErr(c, "invalid-argument")}
	}
	return []any{Variant{}}
}

// ip-name-lookup.

// resolveStream is a resolve-address-stream: a lookup on its own goroutine,
// bounded by lookupTimeout.
type resolveStream struct {
	family // its pollables
	done   chan struct{}
	addrs  []netip.Addr
	err    error
	next   int
	cancel context.CancelFunc
	// allow makes an address the guest read connectable, at the ports
	// the allow-list gives the name.
	allow func(netip.Addr)
}

func (r *resolveStream) ready() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (r *resolveStream) drop() { r.cancel() }

// maxResolved bounds how many addresses one lookup gives the guest;
// MaxConnectEntries bounds how many names' addresses an instance keeps.
const (
	maxResolved = 64
	// MaxConnectEntries is the most host:port entries a SocketPolicy's
	// Connect list is expected to hold (the manifest's bound).
	MaxConnectEntries = 256
)

var lookupFuncs = map[string]hostFunc{
	"resolve-addresses": func(c *cx, a []any) []any {
		name := a[1].(string)
		if ip, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
			r := &resolveStream{done: make(chan struct{}), addrs: []netip.Addr{ip}, cancel: func() {}}
			close(r.done)
			return []any{Variant{Val: r}}
		}
		p := c.inst.wasi.cfg.Sockets
		host := strings.ToLower(strings.TrimSuffix(name, "."))
		var ports []uint16
		if p != nil {
			for _, entry := range p.Connect {
				h, port, err := net.SplitHostPort(entry)
				n, perr := strconv.Atoi(port)
				if err == nil && perr == nil && strings.EqualFold(strings.TrimSuffix(h, "."), host) {
					ports = append(ports, uint16(n))
				}
			}
		}
		if len(ports) == 0 {
			return []any{sockErr(c, "access-denied")}
		}
		lookup := p.Lookup
		if lookup == nil {
			lookup = func(ctx context.Context, h string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", h)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		r := &resolveStream{done: make(chan struct{}), cancel: cancel}
		wake := c.inst.wake
		go func() {
			addrs, err := lookup(ctx, host)
			if len(addrs) > maxResolved {
				addrs = addrs[:maxResolved]
			}
			r.addrs, r.err = addrs, err
			close(r.done)
			notify(wake)
		}()
		resolved := c.inst.wasi.sockets().resolved
		r.allow = func(ip netip.Addr) {
			for _, port := range ports {
				if len(resolved) < maxResolved*MaxConnectEntries {
					resolved[netip.AddrPortFrom(ip.Unmap(), port)] = true
				}
			}
		}
		return []any{Variant{Val: r}}
	},
	"[method]resolve-address-stream.resolve-next-address": func(c *cx, a []any) []any {
		r := a[0].(*resolveStream)
		if !r.ready() {
			return []any{sockErr(c, "would-block")}
		}
		if r.err != nil {
			label := "permanent-resolver-failure"
			var de *net.DNSError
			switch {
			case errors.As(r.err, &de) && de.IsNotFound:
				label = "name-unresolvable"
			case errors.As(r.err, &de) && (de.IsTemporary || de.IsTimeout), errors.Is(r.err, context.DeadlineExceeded):
				label = "temporary-resolver-failure"
			}
			return []any{sockErr(c, label)}
		}
		if r.next >= len(r.addrs) {
			return []any{Variant{Val: Variant{}}}
		}
		ip := r.addrs[r.next]
		r.next++
		if r.allow != nil {
			r.allow(ip)
		}
		return []any{Variant{Val: Variant{Case: 1, Val: lowerIP(ip)}}}
	},
	"[method]resolve-address-stream.subscribe": func(c *cx, a []any) []any {
		r := a[0].(*resolveStream)
		return []any{&pollable{src: r, parent: &r.family}}
	},
}

// socketHost is the wasi:sockets part of hostFuncs.
var socketHost = map[string]map[string]hostFunc{
	"wasi:sockets/network": {
		"network-error-code": func(c *cx, a []any) []any { return []any{Variant{}} },
	},
	"wasi:sockets/instance-network": {
		"instance-network": func(c *cx, a []any) []any { return []any{&network{}} },
	},
	"wasi:sockets/tcp":               tcpFuncs,
	"wasi:sockets/tcp-create-socket": {"create-tcp-socket": createTCPSocket},
	"wasi:sockets/udp":               udpFuncs,
	"wasi:sockets/udp-create-socket": {"create-udp-socket": createUDPSocket},
	"wasi:sockets/ip-name-lookup":    lookupFuncs,
}

func init() {
	for iface, funcs := range socketHost {
		hostFuncs[iface] = funcs
	}
}
