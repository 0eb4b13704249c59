package component

import (
	"net"
	"net/netip"
	"time"
)

// wasi:sockets/udp.

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

var udpFuncs = map[string]hostDef{
	"[method]udp-socket.start-bind": {"func(network: borrow<network>, local-address: ip-socket-address) -> result<_,error-code>", func(c *cx, a []any) []any {
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
	}},
	"[method]udp-socket.finish-bind": {"func() -> result<_,error-code>", func(c *cx, a []any) []any {
		s := a[0].(*udpSocket)
		if s.state != udpBindStarted {
			return []any{sockErr(c, "not-in-progress")}
		}
		s.state = udpBound
		return []any{Variant{}}
	}},
	"[method]udp-socket.stream": {"func(remote-address: option<ip-socket-address>) -> result<tuple<incoming-datagram-stream,outgoing-datagram-stream>,error-code>", func(c *cx, a []any) []any {
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
	}},
	"[method]udp-socket.local-address": {"func() -> result<ip-socket-address,error-code>", func(c *cx, a []any) []any {
		s := a[0].(*udpSocket)
		if s.state == udpUnbound {
			return []any{sockErr(c, "invalid-state")}
		}
		return []any{Variant{Val: lowerSockAddr(s.local, s.v6)}}
	}},
	"[method]udp-socket.remote-address": {"func() -> result<ip-socket-address,error-code>", func(c *cx, a []any) []any {
		s := a[0].(*udpSocket)
		if !s.remote.IsValid() {
			return []any{sockErr(c, "invalid-state")}
		}
		return []any{Variant{Val: lowerSockAddr(s.remote, s.v6)}}
	}},
	"[method]udp-socket.address-family": {"func() -> ip-address-family", func(c *cx, a []any) []any {
		if a[0].(*udpSocket).v6 {
			return []any{uint32(1)}
		}
		return []any{uint32(0)}
	}},
	"[method]udp-socket.unicast-hop-limit": {"func() -> result<u8,error-code>", func(c *cx, a []any) []any { return []any{Variant{Val: a[0].(*udpSocket).hopLimit}} }},
	"[method]udp-socket.set-unicast-hop-limit": {"func(value: u8) -> result<_,error-code>", func(c *cx, a []any) []any {
		if a[1].(uint8) == 0 {
			return []any{sockErr(c, "invalid-argument")}
		}
		a[0].(*udpSocket).hopLimit = a[1].(uint8)
		return []any{Variant{}}
	}},
	"[method]udp-socket.receive-buffer-size":     {"func() -> result<u64,error-code>", func(c *cx, a []any) []any { return []any{Variant{Val: uint64(maxDatagram * udpQueue)}} }},
	"[method]udp-socket.set-receive-buffer-size": {"func(value: u64) -> result<_,error-code>", func(c *cx, a []any) []any { return udpBufferSize(c, a) }},
	"[method]udp-socket.send-buffer-size":        {"func() -> result<u64,error-code>", func(c *cx, a []any) []any { return []any{Variant{Val: uint64(maxDatagram * udpQueue)}} }},
	"[method]udp-socket.set-send-buffer-size":    {"func(value: u64) -> result<_,error-code>", func(c *cx, a []any) []any { return udpBufferSize(c, a) }},
	"[method]udp-socket.subscribe": {"func() -> pollable", func(c *cx, a []any) []any {
		return []any{&pollable{parent: &a[0].(*udpSocket).family}}
	}},
	"[method]incoming-datagram-stream.receive": {"func(max-results: u64) -> result<list<incoming-datagram>,error-code>", func(c *cx, a []any) []any {
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
	}},
	"[method]incoming-datagram-stream.subscribe": {"func() -> pollable", func(c *cx, a []any) []any {
		d := a[0].(*incomingDatagrams)
		return []any{&pollable{src: d, parent: &d.family}}
	}},
	"[method]outgoing-datagram-stream.check-send": {"func() -> result<u64,error-code>", func(c *cx, a []any) []any {
		return []any{Variant{Val: uint64(maxDatagramsPerCall)}}
	}},
	"[method]outgoing-datagram-stream.send": {"func(datagrams: list<outgoing-datagram>) -> result<u64,error-code>", func(c *cx, a []any) []any {
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
	}},
	"[method]outgoing-datagram-stream.subscribe": {"func() -> pollable", func(c *cx, a []any) []any {
		return []any{&pollable{parent: &a[0].(*outgoingDatagrams).family}}
	}},
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
