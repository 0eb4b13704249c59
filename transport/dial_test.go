package transport

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
)

// A peer that was down when this node last dialed it is reachable as soon
// as it is back: the user's next connection is not refused by libp2p's
// dial backoff (seen as a 502 right after both nodes restarted).
func TestAccessDialsAPeerThatCameBack(t *testing.T) {
	addr := closedLoopbackAddr(t)
	client, clientGate := newTestHost(t)
	serverKey, serverID := testKey(t)
	clientGate.Set(map[peer.ID]string{}, map[peer.ID]bool{serverID: true})
	maddr, err := ma.NewMultiaddr(addr)
	if err != nil {
		t.Fatal(err)
	}
	client.Peerstore().AddAddr(serverID, maddr, time.Hour)

	// The server is down: the dial fails and libp2p puts the address in
	// backoff.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = access.Open(ctx, client, serverID, &messages.AccessHeader{ServiceId: "echo", Port: "tcp"})
	cancel()
	if err == nil {
		t.Fatal("a dial to a peer that is down succeeded")
	}

	// The server comes back on the same address.
	gate := NewTrustGate()
	server, err := NewHost(serverKey, []string{addr}, gate, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	gate.Set(map[peer.ID]string{client.ID(): "access"}, map[peer.ID]bool{})
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	access.Serve(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) { return target.Addr().String(), nil }, t.Logf)

	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := access.Open(ctx, client, serverID, &messages.AccessHeader{ServiceId: "echo", Port: "tcp"})
	if err != nil {
		t.Fatalf("the first connection after the peer came back was refused: %v", err)
	}
	s.Close()
}

// The relay of a relayed address is the peer named before /p2p-circuit.
func TestRelayOf(t *testing.T) {
	relay := "12D3KooWAbpqCmrLVLkESBVZzkBW6Akw3kEzGMZid54XqFGjt3kG"
	for addr, want := range map[string]string{
		"/ip4/11.99.0.1/udp/4001/quic-v1/p2p/" + relay + "/p2p-circuit": relay,
		"/ip4/11.99.0.1/udp/4001/quic-v1/p2p/" + relay:                  "",
		"/ip4/11.99.0.1/tcp/4001":                                       "",
	} {
		got := relayOf(ma.StringCast(addr))
		if got.String() != want && !(want == "" && got == "") {
			t.Errorf("relayOf(%s) = %q, want %q", addr, got, want)
		}
	}
}

// The retry of a user's stream keys on libp2p's own backoff error, as a
// real swarm reports it: a dial refused for backoff is recognised, and the
// failure that caused the backoff (nobody listening) is not, so a peer
// that is really down is not dialed twice.
func TestInDialBackoffKnowsLibp2psBackoffError(t *testing.T) {
	client, gate := newTestHost(t)
	_, down := testKey(t)
	gate.Set(map[peer.ID]string{}, map[peer.ID]bool{down: true})
	client.Peerstore().AddAddr(down, ma.StringCast(closedLoopbackAddr(t)), time.Hour)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first := client.Connect(ctx, peer.AddrInfo{ID: down})
	if first == nil {
		t.Fatal("a dial to a closed port succeeded")
	}
	if inDialBackoff(first) {
		t.Fatalf("the refused dial itself was taken for backoff: %v", first)
	}
	again := client.Connect(ctx, peer.AddrInfo{ID: down})
	if again == nil || !inDialBackoff(again) {
		t.Fatalf("the dial right after a failure was not recognised as in backoff: %v", again)
	}
	freshDial(client, down)
	if err := client.Connect(ctx, peer.AddrInfo{ID: down}); err == nil || inDialBackoff(err) {
		t.Fatalf("after freshDial the dial still met the backoff: %v", err)
	}
}

// A relay that has not (yet) given this node a slot is still a way to a
// peer that holds one there: Via keeps it, Addrs (what this node
// advertises) does not, and freshDial gives it to the dialer.
func TestRelayViaWithoutOwnReservation(t *testing.T) {
	_, relayID := testKey(t)
	relayAddr := ma.StringCast(closedLoopbackAddr(t))
	priv, _ := testKey(t)
	gate, relays := NewTrustGate(), NewRelays()
	gate.Set(map[peer.ID]string{}, map[peer.ID]bool{relayID: true})
	h, err := NewHost(priv, []string{"/ip4/127.0.0.1/tcp/0"}, gate, relays, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := relays.Reserve(ctx, h, peer.AddrInfo{ID: relayID, Addrs: []ma.Multiaddr{relayAddr}}); err == nil {
		t.Fatal("a reservation on a relay that is down succeeded")
	}
	if len(relays.Addrs()) != 0 {
		t.Fatalf("a refused reservation is advertised: %v", relays.Addrs())
	}
	want := relayAddr.Encapsulate(ma.StringCast("/p2p/" + relayID.String() + "/p2p-circuit"))
	if via := relays.Via(); len(via) != 1 || !via[0].Equal(want) {
		t.Fatalf("Via = %v, want [%s]", via, want)
	}
	_, target := testKey(t)
	freshDial(h, target)
	found := false
	for _, a := range h.Peerstore().Addrs(target) {
		found = found || a.Equal(want)
	}
	if !found {
		t.Fatalf("freshDial did not give the dialer the relayed address %s: %v", want, h.Peerstore().Addrs(target))
	}
}

// A command right after `device add` reaches a peer whose relayed address
// a background dial (the session's first) left in backoff: that dial ran
// before the peer held its reservation on the relay and failed, and the
// user's connect, once the reservation is there, is not refused by the
// backoff (TestReachRoaming/tcp: `access attach` failed with "all dials
// failed … p2p-circuit … dial backoff").
func TestConnectNowClearsBackoffABackgroundDialLeft(t *testing.T) {
	key := func() crypto.PrivKey { k, _ := testKey(t); return k }
	relay, err := NewRelay(key(), []string{"/ip4/127.0.0.1/tcp/0"}, RelayConfig{Open: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	clientGate, clientRelays := NewTrustGate(), NewRelays()
	client, err := NewHost(key(), []string{"/ip4/127.0.0.1/tcp/0"}, clientGate, clientRelays, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	serverGate, serverRelays := NewTrustGate(), NewRelays()
	server, err := NewHost(key(), []string{"/ip4/127.0.0.1/tcp/0"}, serverGate, serverRelays, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	clientGate.Set(map[peer.ID]string{}, map[peer.ID]bool{server.ID(): true, relay.ID(): true})
	serverGate.Set(map[peer.ID]string{client.ID(): "access"}, map[peer.ID]bool{relay.ID(): true})
	n := &Network{Host: client, Gate: clientGate, Relays: clientRelays}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	relayInfo := peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}
	if _, err := n.Reserve(ctx, relayInfo); err != nil {
		t.Fatal(err)
	}

	// The session's dial: the server has no slot on the relay yet, so the
	// relay refuses the circuit and libp2p puts the address in backoff.
	if err := n.Connect(ctx, server.ID()); err == nil {
		t.Fatal("a relayed dial to a peer without a reservation succeeded")
	}
	if _, err := serverRelays.Reserve(ctx, server, relayInfo); err != nil {
		t.Fatal(err)
	}
	// A background redial still meets the backoff: what the user's command
	// would have met.
	if err := n.Connect(ctx, server.ID()); err == nil || !inDialBackoff(err) {
		t.Fatalf("the redial right after the failure was not refused by the backoff: %v", err)
	}

	if err := n.ConnectNow(ctx, server.ID()); err != nil {
		t.Fatalf("the user's connect met the backoff a background dial left: %v", err)
	}
	if !n.Connected(server.ID()) {
		t.Fatal("ConnectNow returned without a connection to the peer")
	}
}

// A user's dial is tried once more when its error may be about a dial
// begun before the peer was back: libp2p's dial backoff, or a relay that
// had no reservation for the peer then (nat_relay.txtar: after the relay
// restarted, the first access joined a dial whose circuit attempts were
// refused before B reserved again). An error about now is not retried.
func TestJoinedStaleDialIsRetried(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{swarm.ErrDialBackoff, true},
		{errors.New("failed to dial: all dials failed\n  * [/ip4/11.99.0.1/tcp/4001/p2p/12D3KooWHe9mCHw6dKWVSERDF84rgtRHgkuNuMmXB9BoCo2wiok6/p2p-circuit] error opening relay circuit: NO_RESERVATION (204)"), true},
		{errors.New("failed to dial: all dials failed\n  * [/ip4/192.0.2.1/tcp/4433] dial tcp4 192.0.2.1:4433: connect: connection refused"), false},
		{context.DeadlineExceeded, false},
	} {
		if got := joinedStaleDial(tc.err); got != tc.want {
			t.Errorf("joinedStaleDial(%q) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
