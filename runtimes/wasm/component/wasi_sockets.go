package component

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
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

// socketHost is the wasi:sockets part of hostFuncs.
var socketHost = map[string]map[string]hostDef{
	"wasi:sockets/network": {
		"network-error-code": {"func(err: borrow<error>) -> option<error-code>", func(c *cx, a []any) []any { return []any{Variant{}} }},
	},
	"wasi:sockets/instance-network": {
		"instance-network": {"func() -> network", func(c *cx, a []any) []any { return []any{&network{}} }},
	},
	"wasi:sockets/tcp":               tcpFuncs,
	"wasi:sockets/tcp-create-socket": {"create-tcp-socket": {"func(address-family: ip-address-family) -> result<tcp-socket,error-code>", createTCPSocket}},
	"wasi:sockets/udp":               udpFuncs,
	"wasi:sockets/udp-create-socket": {"create-udp-socket": {"func(address-family: ip-address-family) -> result<udp-socket,error-code>", createUDPSocket}},
	"wasi:sockets/ip-name-lookup":    lookupFuncs,
}
