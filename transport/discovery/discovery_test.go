package discovery_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/transport"
	"github.com/fungi-go/fungi/transport/discovery"
)

func newKey(t *testing.T) crypto.PrivKey {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// dhtServer is a `fungi relay serve` node on loopback serving the DHT.
func dhtServer(t *testing.T) (host.Host, peer.AddrInfo) {
	t.Helper()
	h, err := transport.NewRelay(newKey(t), []string{"/ip4/127.0.0.1/tcp/0"}, transport.RelayConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	d, err := discovery.Start(h, discovery.Config{Server: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return h, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// dhtNode is a node's host with its trust gate and a DHT client
// bootstrapped from server, as the daemon starts them.
func dhtNode(t *testing.T, server peer.AddrInfo) (*transport.Network, *discovery.DHT) {
	t.Helper()
	gate := transport.NewTrustGate()
	gate.Set(map[peer.ID]string{}, map[peer.ID]bool{server.ID: true})
	h, err := transport.NewHost(newKey(t), []string{"/ip4/127.0.0.1/tcp/0"}, gate, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	d, err := discovery.Start(h, discovery.Config{Bootstrap: []peer.AddrInfo{server}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &transport.Network{Host: h, Gate: gate, Routing: d}, d
}

// knows waits until h's peerstore holds addr for p.
func knows(t *testing.T, h host.Host, p peer.ID, addr ma.Multiaddr, what string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, func() error {
		if slices.ContainsFunc(h.Peerstore().Addrs(p), addr.Equal) {
			return nil
		}
		return fmt.Errorf("it knows %v", h.Peerstore().Addrs(p))
	})
}

// A device added by peer ID alone is dialed at the address the DHT node
// nearest it holds: Network.Connect asks the DHT when it has no address.
func TestConnectFindsPeerByIDThroughDHT(t *testing.T) {
	server, serverInfo := dhtServer(t)
	a, _ := dhtNode(t, serverInfo)
	b, _ := dhtNode(t, serverInfo)
	b.SetGate(map[peer.ID]string{a.Host.ID(): "access"}, map[peer.ID]bool{})
	a.SetGate(map[peer.ID]string{}, map[peer.ID]bool{b.Host.ID(): true})
	knows(t, server, b.Host.ID(), b.Host.Addrs()[0], "the DHT server to learn B's address")
	if n := len(a.Host.Peerstore().Addrs(b.Host.ID())); n != 0 {
		t.Fatalf("A knows %d addresses of B before the lookup; the test needs none", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Connect(ctx, b.Host.ID()); err != nil {
		t.Fatalf("A did not reach B by its peer ID: %v", err)
	}
	if !a.Connected(b.Host.ID()) {
		t.Fatal("Connect returned but A has no connection to B")
	}
}

// A device whose known address is dead (a QUIC port nobody listens on,
// which a dial gives up on only at its handshake timeout) is reached at
// the address the DHT holds, without waiting for the dead dial to end.
func TestConnectFindsMovedPeerThroughDHT(t *testing.T) {
	server, serverInfo := dhtServer(t)
	a, _ := dhtNode(t, serverInfo)
	b, _ := dhtNode(t, serverInfo)
	b.SetGate(map[peer.ID]string{a.Host.ID(): "access"}, map[peer.ID]bool{})
	a.SetGate(map[peer.ID]string{}, map[peer.ID]bool{b.Host.ID(): true})
	knows(t, server, b.Host.ID(), b.Host.Addrs()[0], "the DHT server to learn B's address")
	dead, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ma.StringCast(fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", dead.LocalAddr().(*net.UDPAddr).Port))
	dead.Close()
	a.AddAddrs(b.Host.ID(), []ma.Multiaddr{deadAddr})

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.Connect(ctx, b.Host.ID()); err != nil {
		t.Fatalf("A did not reach B, moved: %v", err)
	}
	if !a.Connected(b.Host.ID()) {
		t.Fatal("Connect returned but A has no connection to B")
	}
	t.Logf("reached B in %v", time.Since(start))
}

// The gate a device book sets keeps the bootstrap peers in: without them
// the DHT could not ask its own bootstrap node anything once the book is
// applied.
func TestSetGateKeepsBootstrapPeers(t *testing.T) {
	_, serverInfo := dhtServer(t)
	a, _ := dhtNode(t, serverInfo)
	a.SetGate(map[peer.ID]string{}, map[peer.ID]bool{})
	if !a.Gate.Admitted(serverInfo.ID) {
		t.Fatal("the bootstrap peer is refused by the gate after the device book set it")
	}
}

// A node whose addresses change tells the DHT node nearest it, although it
// had no connection to it any more: the DHT server learns the new address.
func TestNewAddressReachesDHTServer(t *testing.T) {
	server, serverInfo := dhtServer(t)
	b, _ := dhtNode(t, serverInfo)
	knows(t, server, b.Host.ID(), b.Host.Addrs()[0], "the DHT server to learn B's first address")
	// The DHT's start-up refresh may dial the server again: closed until
	// it stays closed.
	testutil.WaitFor(t, 10*time.Second, "B to be apart from the DHT server", func() error {
		if b.Connected(server.ID()) || len(server.Network().ConnsToPeer(b.Host.ID())) > 0 {
			b.Host.Network().ClosePeer(server.ID())
			return fmt.Errorf("still connected")
		}
		return nil
	})

	before := b.Host.Network().ListenAddresses()
	if err := b.Host.Network().Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0")); err != nil {
		t.Fatal(err)
	}
	var added ma.Multiaddr
	testutil.WaitFor(t, 10*time.Second, "B's new listen address", func() error {
		for _, a := range b.Host.Network().ListenAddresses() {
			if !slices.ContainsFunc(before, a.Equal) {
				added = a
				return nil
			}
		}
		return fmt.Errorf("B listens on %v only", b.Host.Network().ListenAddresses())
	})
	knows(t, server, b.Host.ID(), added, "the DHT server to learn B's new address")
}

func TestParseBootstrap(t *testing.T) {
	id := "12D3KooWGf6AW1STfpfqsafoFKthzuZdM76uWNrqNPEUNqqrnusg"
	got, err := discovery.ParseBootstrap([]string{
		"/ip4/127.0.0.1/tcp/1/p2p/" + id,
		"/ip4/127.0.0.1/udp/1/quic-v1/p2p/" + id,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Addrs) != 2 {
		t.Fatalf("two addresses of one peer: got %v, want one entry with both", got)
	}
	if _, err := discovery.ParseBootstrap([]string{"/ip4/127.0.0.1/tcp/1"}); err == nil {
		t.Fatal("an address without /p2p/ was accepted")
	}
	many := make([]string, discovery.MaxBootstrapPeers+1)
	for i := range many {
		priv := newKey(t)
		p, _ := peer.IDFromPrivateKey(priv)
		many[i] = "/ip4/127.0.0.1/tcp/1/p2p/" + p.String()
	}
	if _, err := discovery.ParseBootstrap(many); err == nil {
		t.Fatalf("%d bootstrap peers accepted; at most %d", len(many), discovery.MaxBootstrapPeers)
	}
	if len(discovery.DefaultBootstrap()) == 0 {
		t.Fatal("no default bootstrap peers")
	}
	for _, a := range discovery.DefaultBootstrap() {
		if _, err := peer.AddrInfoFromString(a); err != nil {
			t.Fatalf("default bootstrap %q: %v", a, err)
		}
	}
}

func TestSettings(t *testing.T) {
	id := "12D3KooWGf6AW1STfpfqsafoFKthzuZdM76uWNrqNPEUNqqrnusg"
	addr := "/ip4/127.0.0.1/tcp/1/p2p/" + id
	if on, b, err := discovery.Settings(false, []string{addr}, nil); on || len(b) != 0 || err != nil {
		t.Fatalf("DHT off in config: on %v, %d peers, %v", on, len(b), err)
	}
	if on, b, err := discovery.Settings(false, nil, []string{addr}); !on || len(b) != 1 || err != nil {
		t.Fatalf("--bootstrap with DHT off in config: on %v, %d peers, %v; want on with one", on, len(b), err)
	}
	if on, b, err := discovery.Settings(true, []string{addr}, nil); !on || len(b) != 1 || err != nil {
		t.Fatalf("DHT on in config: on %v, %d peers, %v", on, len(b), err)
	}
	if _, _, err := discovery.Settings(true, []string{"/ip4/1.2.3.4/tcp/1"}, nil); err == nil {
		t.Fatal("a bad configured bootstrap address was accepted")
	}
}
