package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	msmux "github.com/multiformats/go-multistream"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
)

// udpPath forwards UDP between the clients that send to it and one
// target, until blackholed: then it drops every packet both ways, as a
// NAT that forgot its mapping (or a peer that moved away) does.
type udpPath struct {
	conn   *net.UDPConn
	target *net.UDPAddr
	dead   atomic.Bool

	mu   sync.Mutex
	back map[string]*net.UDPConn // client address -> socket towards target
}

func newUDPPath(t *testing.T, target *net.UDPAddr) *udpPath {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &udpPath{conn: c, target: target, back: map[string]*net.UDPConn{}}
	t.Cleanup(func() {
		c.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, b := range p.back {
			b.Close()
		}
	})
	go p.forward()
	return p
}

func (p *udpPath) addr() ma.Multiaddr {
	return ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", p.conn.LocalAddr().(*net.UDPAddr).Port))
}

func (p *udpPath) forward() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := p.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if p.dead.Load() {
			continue
		}
		p.mu.Lock()
		b := p.back[from.String()]
		if b == nil {
			b, err = net.DialUDP("udp4", nil, p.target)
			if err != nil {
				p.mu.Unlock()
				continue
			}
			p.back[from.String()] = b
			go p.reply(b, from)
		}
		p.mu.Unlock()
		b.Write(buf[:n])
	}
}

func (p *udpPath) reply(b *net.UDPConn, to *net.UDPAddr) {
	buf := make([]byte, 64<<10)
	for {
		n, err := b.Read(buf)
		if err != nil {
			return
		}
		if !p.dead.Load() {
			p.conn.WriteToUDP(buf[:n], to)
		}
	}
}

// directConns are h's open direct connections to id.
// pathTo is a UDP path to server's QUIC listener.
func pathTo(t *testing.T, server host.Host) *udpPath {
	t.Helper()
	for _, a := range server.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			port, _ := a.ValueForProtocol(ma.P_UDP)
			quicAddr, err := net.ResolveUDPAddr("udp4", "127.0.0.1:"+port)
			if err != nil {
				t.Fatal(err)
			}
			return newUDPPath(t, quicAddr)
		}
	}
	t.Fatalf("the server listens on no QUIC address: %v", server.Addrs())
	return nil
}

func directConns(h host.Host, id peer.ID) []network.Conn {
	var out []network.Conn
	for _, c := range h.Network().ConnsToPeer(id) {
		if !relayedConn(c) && !c.IsClosed() {
			out = append(out, c)
		}
	}
	return out
}

// A direct QUIC connection whose path goes silent (here a UDP path that
// stops forwarding; in the wild the peer moved to another network) is
// closed on both sides within seconds once a relayed connection to the
// peer exists, and new streams take the relayed one. Before, it stayed
// until QUIC's idle timeout (30 s) and took every new stream meanwhile.
func TestPathWatchClosesADeadDirectConnection(t *testing.T) {
	key := func() crypto.PrivKey { k, _ := testKey(t); return k }
	relay, err := NewRelay(key(), []string{"/ip4/127.0.0.1/tcp/0"}, RelayConfig{Open: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	clientGate, serverGate, serverRelays := NewTrustGate(), NewTrustGate(), NewRelays()
	client, err := NewHost(key(), []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, clientGate, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := NewHost(key(), []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, serverGate, serverRelays, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	clientGate.Set(map[peer.ID]string{}, map[peer.ID]bool{server.ID(): true, relay.ID(): true})
	serverGate.Set(map[peer.ID]string{client.ID(): "access"}, map[peer.ID]bool{relay.ID(): true, client.ID(): true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := serverRelays.Reserve(ctx, server, peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}); err != nil {
		t.Fatal(err)
	}
	// The relayed connection first, then a direct one beside it through
	// the UDP path, as a hole punch leaves them.
	if err := client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: serverRelays.Addrs()}); err != nil {
		t.Fatal(err)
	}
	path := pathTo(t, server)
	// Only through the path: identify told the client the server's own
	// address, which a direct dial would race the path with.
	testutil.WaitFor(t, 10*time.Second, "identify over the relayed connection", func() error {
		for _, a := range client.Peerstore().Addrs(server.ID()) {
			if !isRelayed(a) {
				return nil
			}
		}
		return errors.New("the client knows no direct address of the server yet")
	})
	client.Peerstore().ClearAddrs(server.ID())
	if err := client.Connect(network.WithForceDirectDial(ctx, "test"), peer.AddrInfo{ID: server.ID(), Addrs: []ma.Multiaddr{path.addr()}}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "a direct connection on both sides", func() error {
		if len(directConns(client, server.ID())) == 0 || len(directConns(server, client.ID())) == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	for _, c := range directConns(client, server.ID()) {
		if !c.RemoteMultiaddr().Equal(path.addr()) {
			t.Fatalf("a direct connection on %s, not the path %s", c.RemoteMultiaddr(), path.addr())
		}
	}
	nc := &Network{Host: client}
	if _, err := nc.Ping(ctx, server.ID()); err != nil {
		t.Fatalf("ping over the direct connection: %v", err)
	}

	path.dead.Store(true)
	start := time.Now()
	// Within 5 s: a probe every second, 1.5 s for an answer, and room for
	// a loaded machine; QUIC alone would take 30 s.
	testutil.WaitFor(t, 5*time.Second, "the dead direct connection closed on both sides", func() error {
		if c, s := directConns(client, server.ID()), directConns(server, client.ID()); len(c)+len(s) > 0 {
			return fmt.Errorf("%d direct connections left on the client, %d on the server (of %d and %d in all)", len(c), len(s),
				len(client.Network().ConnsToPeer(server.ID())), len(server.Network().ConnsToPeer(client.ID())))
		}
		return nil
	})
	t.Logf("closed %s after the path went silent", time.Since(start).Round(time.Millisecond))
	if len(server.Network().ConnsToPeer(client.ID())) == 0 {
		t.Fatal("the relayed connection was closed with the dead direct one")
	}
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	defer pcancel()
	if _, err := nc.Ping(pctx, server.ID()); err != nil {
		t.Fatalf("a new stream after the direct connection closed: %v", err)
	}
}

// quicPair starts two hosts on loopback QUIC: the client may dial the
// server, which trusts it with the access role.
func quicPair(t *testing.T) (client, server host.Host) {
	t.Helper()
	client, clientGate := newTestHostOn(t, "/ip4/127.0.0.1/udp/0/quic-v1")
	server, serverGate := newTestHostOn(t, "/ip4/127.0.0.1/udp/0/quic-v1")
	clientGate.Set(map[peer.ID]string{}, map[peer.ID]bool{server.ID(): true})
	serverGate.Set(map[peer.ID]string{client.ID(): "access"}, map[peer.ID]bool{client.ID(): true})
	return client, server
}

// An access stream that fails short of the peer's answer, on a connection
// that is the only one to its peer (nothing beside it for the path watch
// to compare), has that connection pinged at once and closed when its
// path is dead: the next attempt dials afresh instead of waiting for
// QUIC's idle timeout (30 s) on a connection that takes every stream.
func TestAccessFailurePingsItsConnection(t *testing.T) {
	client, server := quicPair(t)
	path := pathTo(t, server)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: []ma.Multiaddr{path.addr()}}); err != nil {
		t.Fatal(err)
	}
	if n := len(directConns(client, server.ID())); n != 1 {
		t.Fatalf("%d connections to the server, want the one through the path", n)
	}

	path.dead.Store(true)
	start := time.Now()
	actx, acancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := access.Open(actx, client, server.ID(), &messages.AccessHeader{ServiceId: "web", Port: "http"})
	acancel()
	if err == nil {
		t.Fatal("an access stream over a dead path was accepted")
	}
	// A ping of 1.5 s at most after the failure, and room for a loaded
	// machine; QUIC alone would keep the connection 30 s.
	testutil.WaitFor(t, 6*time.Second, "the dead connection closed after the failed access stream", func() error {
		if n := len(directConns(client, server.ID())); n > 0 {
			return fmt.Errorf("%d connections left", n)
		}
		return nil
	})
	t.Logf("closed %s after the path went silent (the access stream failed: %v)", time.Since(start).Round(time.Millisecond), err)
}

// A peer that refuses the probe's ping stream (its resource manager allows
// a few ping streams per peer, and one whose reset was lost on a dead path
// holds a slot until its own timeout) answered: the probe says the path is
// alive and the connection stays. Before, the refusal read as a dead path
// and a live direct connection was closed beside its relayed one.
func TestProbeTakesARefusalForAnAnswer(t *testing.T) {
	client, server := quicPair(t)
	server.SetStreamHandler(ping.ID, func(s network.Stream) { s.Reset() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		t.Fatal(err)
	}
	conns := client.Network().ConnsToPeer(server.ID())
	if len(conns) != 1 {
		t.Fatalf("%d connections to the server, want 1", len(conns))
	}
	if err := pingOverConn(ctx, conns[0]); err == nil {
		t.Fatal("the server's refusing ping handler answered a ping")
	}
	if err := probeConn(ctx, conns[0]); err != nil {
		t.Fatalf("a refused probe counted as a dead path: %v", err)
	}
}

// A peer may hold several ping streams at once: fungi pings each of its
// connections to a peer (the path watch), from its session, for
// `connection list` and after a failed access stream. libp2p's default of
// two inbound ping streams per peer refused the third, which the path watch
// and the tests read as a dead path.
func TestSeveralPingsFromOnePeerAreServed(t *testing.T) {
	client, server, _ := trustedPair(t, "access")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		t.Fatal(err)
	}
	conns := client.Network().ConnsToPeer(server.ID())
	if len(conns) != 1 {
		t.Fatalf("%d connections to the server, want 1", len(conns))
	}
	// Each ping's stream stays open until the test ends: the server holds
	// all of them at once.
	const n = 6
	for i := range n {
		st, err := conns[0].NewStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Reset() })
		st.SetDeadline(time.Now().Add(10 * time.Second))
		if err := st.SetProtocol(ping.ID); err != nil {
			t.Fatal(err)
		}
		rw := msmux.NewMSSelect(st, ping.ID)
		out := make([]byte, ping.PingSize)
		if _, err := rw.Write(out); err != nil {
			t.Fatalf("ping %d of %d held at once: %v", i+1, n, err)
		}
		if _, err := io.ReadFull(rw, out); err != nil {
			t.Fatalf("ping %d of %d held at once: %v", i+1, n, err)
		}
	}
}
