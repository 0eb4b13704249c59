package transport

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/transport/transporttest"
)

// waitPending waits until gate lists p as pending.
func waitPending(t *testing.T, gate *TrustGate, p peer.ID, what string) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what+" listed as pending", func() error {
		for _, e := range gate.Pending() {
			if e.ID == p {
				return nil
			}
		}
		return fmt.Errorf("pending = %+v", gate.Pending())
	})
}

// addrsOver are h's addresses over transport (tcp or quic-v1).
func addrsOver(h host.Host, transport string) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range h.Addrs() {
		if _, err := a.ValueForProtocol(ma.ProtocolWithName(transport).Code); err == nil && !isRelayed(a) {
			out = append(out, a)
		}
	}
	return out
}

// A node's configured relay connecting to it, and the relay's AutoNAT
// dial-backs (from the relay's throwaway dial-back identity, on the
// relay's address, over TCP and QUIC) are not devices wanting to connect:
// `device pending` stays empty of them (issue 21: a relay's dial-back was
// listed as a stranger in 19 NAT cells). A real stranger still appears,
// whether it comes directly from another address or through that very
// relay.
func TestPendingLeavesProbesOut(t *testing.T) {
	key := func() crypto.PrivKey { k, _ := testKey(t); return k }
	both := []string{transporttest.LoopbackTCP, transporttest.LoopbackQUIC}
	relay, err := NewRelay(key(), both, RelayConfig{Open: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Close() })
	gate, relays := NewTrustGate(), NewRelays()
	node, err := NewHost(key(), both, gate, relays, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	gate.Set(map[peer.ID]string{}, map[peer.ID]bool{relay.ID(): true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The configured relay connects to the node itself.
	if err := relay.Connect(ctx, peer.AddrInfo{ID: node.ID(), Addrs: node.Addrs()}); err != nil {
		t.Fatalf("the configured relay could not connect to the node: %v", err)
	}
	testutil.WaitFor(t, 20*time.Second, "the node learned the relay serves AutoNAT", func() error {
		if ok, _ := node.Peerstore().SupportsProtocols(relay.ID(), autonat.AutoNATProto); len(ok) == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	if _, err := relays.Reserve(ctx, node, peer.AddrInfo{ID: relay.ID(), Addrs: relay.Addrs()}); err != nil {
		t.Fatal(err)
	}

	// The relay's dial-backs: the swarm its AutoNAT service dials from,
	// on the relay's machine (here its loopback address).
	rm, err := defaultResourceManager()
	if err != nil {
		t.Fatal(err)
	}
	dialBack, err := newDialBackSwarm(nodeConfig{rm: rm})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dialBack.Close() })
	for _, transport := range []string{"tcp", "quic-v1"} {
		dialBack.Peerstore().ClearAddrs(node.ID())
		dialBack.Peerstore().AddAddrs(node.ID(), addrsOver(node, transport), time.Hour)
		dialBack.Backoff().Clear(node.ID())
		dialBack.DialPeer(ctx, node.ID()) // the gate refuses it, after the dialer's handshake
		testutil.WaitFor(t, 20*time.Second, "the node closed the dial-back over "+transport, func() error {
			if len(dialBack.ConnsToPeer(node.ID())) != 0 {
				return errors.New("still connected")
			}
			return nil
		})
	}

	// A stranger from another address, then one through the relay.
	direct, directGate := newTestHostOn(t, "/ip4/127.0.0.3/tcp/0")
	directGate.Set(map[peer.ID]string{}, map[peer.ID]bool{node.ID(): true})
	direct.Peerstore().AddAddrs(node.ID(), addrsOver(node, "tcp"), time.Hour)
	transporttest.ShutOut(t, direct, node.ID(), "a stranger from another address")
	waitPending(t, gate, direct.ID(), "a stranger from another address")

	viaRelay, viaGate := newTestHostOn(t, transporttest.LoopbackTCP)
	viaGate.Set(map[peer.ID]string{}, map[peer.ID]bool{node.ID(): true, relay.ID(): true})
	viaRelay.Peerstore().AddAddrs(node.ID(), relays.Addrs(), time.Hour)
	transporttest.ShutOut(t, viaRelay, node.ID(), "a stranger through the relay")
	waitPending(t, gate, viaRelay.ID(), "a stranger through the relay")

	pending := gate.Pending()
	if len(pending) != 2 {
		t.Fatalf("pending = %+v, want the two strangers alone, not the relay nor its dial-backs (%s)", pending, dialBack.LocalPeer())
	}
	if node.Network().Connectedness(relay.ID()) != network.Connected {
		t.Fatal("the node lost its relay")
	}
}
