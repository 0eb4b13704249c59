package access_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport"
	"github.com/fungi-go/fungi/transport/access"
	"github.com/fungi-go/fungi/transport/transporttest"
	"github.com/fungi-go/fungi/transport/wire"
)

// warmRig is an access server in front of a counting echo service and a
// client's access.Dialer.
type warmRig struct {
	client, server host.Host
	gate           *transport.TrustGate
	dialer         *access.Dialer
	accepted       *atomic.Int32
}

func newWarmRig(t *testing.T) *warmRig {
	t.Helper()
	return newWarmRigOn(t, "/ip4/127.0.0.1/tcp/0")
}

// newWarmRigOn is newWarmRig with both hosts listening on listen.
func newWarmRigOn(t *testing.T, listen string) *warmRig {
	t.Helper()
	echo, accepted := countingEcho(t)
	r := newWarmRigFor(t, listen, echo)
	r.accepted = accepted
	return r
}

// newWarmRigFor is newWarmRig in front of the service at addr.
func newWarmRigFor(t *testing.T, listen, addr string) *warmRig {
	t.Helper()
	client, clientGate := transporttest.Host(t, startHost, listen)
	server, gate := transporttest.Host(t, startHost, listen)
	transporttest.TrustEachOther(client, clientGate, server, gate, "access")
	access.Serve(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) { return addr, nil }, t.Logf)
	d := access.NewDialer(client)
	t.Cleanup(d.Close)
	return &warmRig{client: client, server: server, gate: gate, dialer: d}
}

// open opens an access stream as the forwarder does.
func (r *warmRig) open(t *testing.T) access.HalfCloser {
	t.Helper()
	ctx, cancel := context.WithTimeout(access.WithEarlyData(context.Background()), 10*time.Second)
	defer cancel()
	s, err := r.dialer.Open(ctx, r.server.ID(), &messages.AccessHeader{ServiceId: "echo", Port: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func echoes(t *testing.T, s access.HalfCloser, msg string) {
	t.Helper()
	if _, err := s.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(s, back); err != nil || string(back) != msg {
		t.Fatalf("echo of %q: %q %v", msg, back, err)
	}
}

// ready is the client's warm streams to the server.
func (r *warmRig) ready() []network.Stream { return r.dialer.Ready(r.server.ID()) }

// serverAccessStreams counts the access streams the server holds open.
func (r *warmRig) serverAccessStreams() int {
	n := 0
	for _, c := range r.server.Network().ConnsToPeer(r.client.ID()) {
		for _, s := range c.GetStreams() {
			if isAccess(s) {
				n++
			}
		}
	}
	return n
}

// isAccess reports whether s is an access stream, of either protocol.
func isAccess(s network.Stream) bool {
	return s.Protocol() == wire.AccessProtocol || s.Protocol() == wire.AccessReuseProtocol
}

// waitPeerHolds waits until the server holds n access streams.
func (r *warmRig) waitPeerHolds(t *testing.T, n int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("the peer to hold %d access streams", n), func() error {
		if got := r.serverAccessStreams(); got != n {
			return fmt.Errorf("the peer holds %d", got)
		}
		return nil
	})
}

func (r *warmRig) waitWarm(t *testing.T, n int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("%d warm streams", n), func() error {
		if got := len(r.ready()); got != n {
			return fmt.Errorf("%d warm", got)
		}
		return nil
	})
}

// After a connection, the dialer warms streams to the peer: the peer's
// handler runs for them, the service sees no connection, and the next
// connection travels on one of them.
func TestAccessDialerWarmsStreamsAfterUse(t *testing.T) {
	r := newWarmRig(t)
	if n := len(r.ready()); n != 0 {
		t.Fatalf("%d streams warm before any use", n)
	}
	echoes(t, r.open(t), "first")
	r.waitWarm(t, access.WarmStreams)
	r.waitPeerHolds(t, 1+access.WarmStreams)
	if n := r.accepted.Load(); n != 1 {
		t.Fatalf("the service saw %d connections for one client connection", n)
	}

	warm := r.ready()
	s := r.open(t)
	if got := access.Underlying(s); got != warm[len(warm)-1] {
		t.Fatalf("the second connection did not take the newest warm stream (%v, warm %v)", got, warm)
	}
	echoes(t, s, "second")
	if n := r.accepted.Load(); n != 2 {
		t.Fatalf("the service saw %d connections for two", n)
	}
	r.waitWarm(t, access.WarmStreams) // the one taken is replaced
}

// A peer that cannot be reached gets no warm streams: nothing is dialled
// again in the background.
func TestAccessDialerWarmsNothingForAFailedOpen(t *testing.T) {
	client, _ := transporttest.Host(t, startHost, transporttest.LoopbackTCP)
	other, _ := transporttest.Host(t, startHost, transporttest.LoopbackTCP)
	d := access.NewDialer(client)
	defer d.Close()
	ctx, cancel := context.WithTimeout(access.WithEarlyData(context.Background()), 10*time.Second)
	defer cancel()
	if _, err := d.Open(ctx, other.ID(), &messages.AccessHeader{ServiceId: "echo"}); err == nil {
		t.Fatal("opened a stream to a peer with no known address")
	}
	if ready, filling, _ := d.Counts(other.ID()); ready+filling != 0 {
		t.Fatalf("%d warm and %d warming to a peer that cannot be reached", ready, filling)
	}
}

// A warm stream the peer ended is not handed out: the connection gets a
// fresh stream and works.
func TestAccessDialerSkipsStreamsThePeerEnded(t *testing.T) {
	for name, listen := range map[string]string{"tcp": "/ip4/127.0.0.1/tcp/0", "quic": "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(name, func(t *testing.T) { skipsStreamsThePeerEnded(t, newWarmRigOn(t, listen)) })
	}
}

func skipsStreamsThePeerEnded(t *testing.T, r *warmRig) {
	first := r.open(t)
	echoes(t, first, "first")
	first.Close()
	r.waitWarm(t, access.WarmStreams)
	warm := r.ready()
	// Once the first connection's bridge ended, the peer's access
	// streams are the warm ones.
	r.waitPeerHolds(t, access.WarmStreams)
	for _, c := range r.server.Network().ConnsToPeer(r.client.ID()) {
		for _, s := range c.GetStreams() {
			if isAccess(s) {
				s.Reset()
			}
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the client to see the resets", func() error {
		for _, s := range warm {
			if !access.StreamEnded(s) {
				return fmt.Errorf("stream %s still intact", s.ID())
			}
		}
		return nil
	})
	s := r.open(t)
	for _, w := range warm {
		if access.Underlying(s) == w {
			t.Fatal("a stream the peer reset was handed out")
		}
	}
	echoes(t, s, "after the resets")
}

// A warm stream whose peer withdrew this node's trust meanwhile is
// refused when used, as a fresh one is: the role is checked when the
// header arrives, not only when the stream opened.
func TestAccessDialerWarmStreamChecksTheRoleAgain(t *testing.T) {
	r := newWarmRig(t)
	echoes(t, r.open(t), "first")
	r.waitWarm(t, access.WarmStreams)
	r.waitPeerHolds(t, 1+access.WarmStreams)
	r.gate.Set(map[peer.ID]string{}, map[peer.ID]bool{})
	s := r.open(t)
	as, ok := s.(*access.Stream)
	if !ok {
		t.Fatalf("open returned %T", s)
	}
	err := as.Accepted()
	if err == nil || !strings.Contains(err.Error(), "untrusted this node") {
		t.Fatalf("a warm stream used after trust was withdrawn: %v", err)
	}
	if n := r.accepted.Load(); n != 1 {
		t.Fatalf("the service saw %d connections, one after trust was withdrawn", n)
	}
}

// Warm streams nobody takes are ended at their age bound and not
// replaced, and the peer's handlers for them end too.
func TestAccessDialerWarmStreamsExpire(t *testing.T) {
	r := newWarmRig(t)
	r.dialer.SetMaxAge(50 * time.Millisecond)
	s := r.open(t)
	echoes(t, s, "first")
	testutil.WaitFor(t, 10*time.Second, "two streams warmed and expired", func() error {
		if ready, _, warmed := r.dialer.Counts(r.server.ID()); warmed != access.WarmStreams || ready != 0 {
			return fmt.Errorf("%d warmed, %d warm", warmed, ready)
		}
		return nil
	})
	r.waitPeerHolds(t, 1) // the peer's handlers for them ended too
	if ready, filling, warmed := r.dialer.Counts(r.server.ID()); ready+filling != 0 || warmed != access.WarmStreams {
		t.Fatalf("expired streams were replaced: %d warm, %d warming, %d warmed in all", ready, filling, warmed)
	}
}

// Warm streams that ride a relay are left once a direct connection to the
// peer exists: the next connection takes the direct one, as a stream
// opened now would.
func TestAccessDialerLeavesRelayedWarmStreamsForADirectConnection(t *testing.T) {
	key := func() crypto.PrivKey { k, _ := transporttest.Key(t); return k }
	relay, err := transport.NewRelay(key(), []string{"/ip4/127.0.0.1/tcp/0"}, transport.RelayConfig{Open: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	clientGate, serverGate, serverRelays := transport.NewTrustGate(), transport.NewTrustGate(), transport.NewRelays()
	client, err := transport.NewHost(key(), []string{"/ip4/127.0.0.1/tcp/0"}, clientGate, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := transport.NewHost(key(), []string{"/ip4/127.0.0.1/tcp/0"}, serverGate, serverRelays, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	clientGate.Set(map[peer.ID]string{}, map[peer.ID]bool{server.ID(): true, relay.ID(): true})
	serverGate.Set(map[peer.ID]string{client.ID(): "access"}, map[peer.ID]bool{relay.ID(): true})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := serverRelays.Reserve(ctx, server, peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}); err != nil {
		t.Fatal(err)
	}
	echo, _ := countingEcho(t)
	access.Serve(server, serverGate, func(peer.ID, *messages.AccessHeader) (string, error) { return echo, nil }, t.Logf)
	// The client knows the server only through the relay.
	client.Peerstore().AddAddrs(server.ID(), serverRelays.Addrs(), time.Hour)
	r := &warmRig{client: client, server: server, gate: serverGate, dialer: access.NewDialer(client)}
	t.Cleanup(r.dialer.Close)

	relayed := func(s network.Stream) bool {
		return wire.Relayed(s.Conn())
	}
	first := r.open(t)
	if !relayed(access.Underlying(first)) {
		t.Fatalf("the first connection went over %s, not the relay", access.Underlying(first).Conn().RemoteMultiaddr())
	}
	echoes(t, first, "over the relay")
	r.waitWarm(t, access.WarmStreams)
	for _, s := range r.ready() {
		if !relayed(s) {
			t.Fatalf("a warm stream on %s, not the relay", s.Conn().RemoteMultiaddr())
		}
	}
	// As a hole punch does: a direct connection next to the relayed one.
	if err := client.Connect(network.WithForceDirectDial(ctx, "test"), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s := r.open(t)
	if relayed(access.Underlying(s)) {
		t.Fatalf("with a direct connection up, a connection took a warm stream over %s", access.Underlying(s).Conn().RemoteMultiaddr())
	}
	echoes(t, s, "direct")
}

// Warm streams open lazily through libp2p: the dialer's context marker
// reaches the fork's OpenStream through host.NewStream, the swarm and the
// upgrader (the client's yamux stream says so), and the stream's SYN
// reaches the peer on its first data frame, the protocol selection (the
// peer's yamux stream says so, and so sends its ACK on its reply). A
// connection's own stream, opened without a warm one, opens as upstream
// does on both sides.
func TestAccessWarmStreamsOpenLazily(t *testing.T) {
	r := newWarmRig(t)
	first := r.open(t)
	echoes(t, first, "first")
	r.waitWarm(t, access.WarmStreams)
	r.waitPeerHolds(t, 1+access.WarmStreams)

	peerSide := map[uint32]bool{} // the server's access streams: id -> opened lazily
	for _, c := range r.server.Network().ConnsToPeer(r.client.ID()) {
		for _, s := range c.GetStreams() {
			if !isAccess(s) {
				continue
			}
			ys := access.YamuxStreamOf(s)
			if ys == nil {
				t.Fatalf("no yamux stream under the server's %T", s)
			}
			peerSide[ys.StreamID()] = ys.LazyOpen()
		}
	}
	check := func(what string, s network.Stream, lazy bool) {
		t.Helper()
		ys := access.YamuxStreamOf(s)
		if ys == nil {
			t.Fatalf("%s: no yamux stream under %T", what, s)
		}
		if ys.LazyOpen() != lazy {
			t.Errorf("%s: the client's yamux stream opened lazily: %v, want %v", what, ys.LazyOpen(), lazy)
		}
		peerLazy, ok := peerSide[ys.StreamID()]
		if !ok {
			t.Fatalf("%s: the server holds no access stream %d (it holds %v)", what, ys.StreamID(), peerSide)
		}
		if peerLazy != lazy {
			t.Errorf("%s: the server's yamux stream got its SYN on a data frame: %v, want %v", what, peerLazy, lazy)
		}
	}
	check("the first connection's stream", access.Underlying(first), false)
	for i, s := range r.ready() {
		check(fmt.Sprintf("warm stream %d", i), s, true)
	}
	// A warm stream carries a connection as a fresh one does.
	echoes(t, r.open(t), "on a lazily opened stream")
}

// roundTrip sends msg on s, ends its side, and checks the echo comes
// back whole and ends.
func roundTrip(t *testing.T, s access.HalfCloser, msg []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := s.Write(msg)
		if err == nil {
			err = s.CloseWrite()
		}
		errc <- err
	}()
	back, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(back, msg) {
		t.Fatalf("the echo of %d bytes: %d bytes back, %v", len(msg), len(back), err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// waitReused waits until the dialer's next stream to the server is s,
// back from its connection with the peer's release.
func (r *warmRig) waitReused(t *testing.T, s network.Stream) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "the stream back for the next connection", func() error {
		if next := r.dialer.NextReused(r.server.ID()); next != s {
			return fmt.Errorf("next reused stream %v", next)
		}
		return nil
	})
}

// Connections that end cleanly leave their stream for the next one: each
// is a connection of its own at the service, its bytes arrive whole both
// ways (chunked, and delivered by the receive loops), the peer checks the
// role again for each, and no new stream opens for them.
func TestAccessStreamCarriesOneConnectionAfterAnother(t *testing.T) {
	for name, listen := range map[string]string{"tcp": "/ip4/127.0.0.1/tcp/0", "quic": "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(name, func(t *testing.T) { carriesOneConnectionAfterAnother(t, newWarmRigOn(t, listen)) })
	}
}

func carriesOneConnectionAfterAnother(t *testing.T, r *warmRig) {
	var first network.Stream
	const n = 4
	for i := range n {
		s := r.open(t)
		under := access.Underlying(s)
		if i == 0 {
			first = under
			if first.Protocol() != wire.AccessReuseProtocol {
				t.Fatalf("the dialer opened %s, not the reusable protocol", first.Protocol())
			}
		} else if under != first {
			t.Fatalf("connection %d went on a stream of its own", i+1)
		}
		roundTrip(t, s, bytes.Repeat([]byte{'a' + byte(i)}, 300<<10))
		s.Close()
		r.waitReused(t, first)
	}
	if got := r.accepted.Load(); got != n {
		t.Fatalf("the service saw %d connections for %d", got, n)
	}
	if got := r.dialer.Reused(r.server.ID()); got != n-1 {
		t.Fatalf("%d connections went on a stream back from another, want %d", got, n-1)
	}
	// The reused stream and two warm ones (the refill after the first
	// connection): the others opened none.
	r.waitPeerHolds(t, 1+access.WarmStreams)

	// The role is checked again on a reused stream.
	r.gate.Set(map[peer.ID]string{}, map[peer.ID]bool{})
	s := r.open(t)
	if access.Underlying(s) != first {
		t.Fatal("the connection after trust was withdrawn did not take the reused stream")
	}
	err := s.(*access.Stream).Accepted()
	if err == nil || !strings.Contains(err.Error(), "untrusted this node") {
		t.Fatalf("a reused stream after trust was withdrawn: %v", err)
	}
	if got := r.accepted.Load(); got != n {
		t.Fatalf("the service saw a connection after trust was withdrawn")
	}
}

// A connection that does not end cleanly (the client leaves mid-way, no
// end of its own) ends its stream: the next connection gets another.
func TestAccessStreamEndedUncleanlyIsNotReused(t *testing.T) {
	r := newWarmRig(t)
	s := r.open(t)
	if p := access.Underlying(s).Protocol(); p != wire.AccessReuseProtocol {
		t.Fatalf("a stream of %s", p)
	}
	echoes(t, s, "hello")
	s.Close() // no CloseWrite: the connection was not finished
	under := access.Underlying(s)
	testutil.WaitFor(t, 10*time.Second, "the stream to end", func() error {
		if !access.StreamEnded(under) {
			return fmt.Errorf("still intact")
		}
		return nil
	})
	next := r.open(t)
	if access.Underlying(next) == under {
		t.Fatal("a stream whose connection ended uncleanly was reused")
	}
	echoes(t, next, "after")
	if got := r.dialer.Reused(r.server.ID()); got != 0 {
		t.Fatalf("%d connections reused a stream", got)
	}
}

// With a peer that offers only the first access protocol (a node from
// before the reusable one), the dialer opens that one, and it works.
func TestAccessDialerUsesTheFirstProtocolWithAnOlderPeer(t *testing.T) {
	r := newWarmRig(t)
	r.server.RemoveStreamHandler(wire.AccessReuseProtocol)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.client.Connect(ctx, peer.AddrInfo{ID: r.server.ID(), Addrs: r.server.Addrs()}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the client to learn the server dropped the protocol", func() error {
		if ok, _ := r.client.Peerstore().SupportsProtocols(r.server.ID(), wire.AccessReuseProtocol); len(ok) > 0 {
			return fmt.Errorf("still listed")
		}
		if ok, _ := r.client.Peerstore().SupportsProtocols(r.server.ID(), wire.AccessProtocol); len(ok) == 0 {
			return fmt.Errorf("the first protocol is not listed either")
		}
		return nil
	})
	for i := range 2 {
		s := r.open(t)
		if p := access.Underlying(s).Protocol(); p != wire.AccessProtocol {
			t.Fatalf("connection %d opened %s", i+1, p)
		}
		roundTrip(t, s, []byte("over the first protocol"))
		s.Close()
	}
	if got := r.accepted.Load(); got != 2 {
		t.Fatalf("the service saw %d connections", got)
	}
}
