package transport

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

func delays(t *testing.T, addrs ...string) map[string]time.Duration {
	t.Helper()
	var in []ma.Multiaddr
	for _, s := range addrs {
		in = append(in, ma.StringCast(s))
	}
	out := map[string]time.Duration{}
	for _, d := range dialRanker()(in) {
		if _, dup := out[d.Addr.String()]; dup {
			t.Fatalf("%s ranked twice", d.Addr)
		}
		out[d.Addr.String()] = d.Delay
	}
	if len(out) != len(addrs) {
		t.Fatalf("ranked %d addresses of %d: %v", len(out), len(addrs), out)
	}
	return out
}

func TestDialRankerTCPFirstOnDirectPaths(t *testing.T) {
	const (
		pvtTCP   = "/ip4/192.168.1.5/tcp/4001"
		pvtQUIC  = "/ip4/192.168.1.5/udp/4001/quic-v1"
		pubTCP   = "/ip4/1.2.3.4/tcp/4001"
		pubTCP6  = "/ip6/2001:db8::1/tcp/4001"
		pubQUIC  = "/ip4/1.2.3.4/udp/4001/quic-v1"
		relayed  = "/ip4/5.6.7.8/tcp/4001/p2p/12D3KooWBoKcEUwvwB2XgQvVmvAFRpRBkgXL5Cq6kghspLuvNiXE/p2p-circuit"
		relayedQ = "/ip4/5.6.7.8/udp/4001/quic-v1/p2p/12D3KooWBoKcEUwvwB2XgQvVmvAFRpRBkgXL5Cq6kghspLuvNiXE/p2p-circuit"
	)
	d := delays(t, pvtQUIC, pvtTCP, pubQUIC, pubTCP, pubTCP6, relayed, relayedQ)
	if d[pvtTCP] != 0 || d[pvtQUIC] != swarm.PrivateTCPDelay {
		t.Errorf("private: TCP at %v, QUIC at %v; want 0 and %v", d[pvtTCP], d[pvtQUIC], swarm.PrivateTCPDelay)
	}
	if d[pubTCP6] != 0 {
		t.Errorf("public IPv6 TCP at %v, want 0", d[pubTCP6])
	}
	if d[pubTCP] >= d[pubQUIC] || d[pubTCP6] >= d[pubQUIC] {
		t.Errorf("public: TCP at %v and %v, QUIC at %v; want TCP first", d[pubTCP6], d[pubTCP], d[pubQUIC])
	}
	for _, r := range []string{relayed, relayedQ} {
		if d[r] < swarm.RelayDelay {
			t.Errorf("relayed %s at %v, want after %v: a public direct address exists", r, d[r], swarm.RelayDelay)
		}
	}

	// QUIC alone is dialled at once.
	if d := delays(t, pubQUIC, relayed); d[pubQUIC] != 0 {
		t.Errorf("QUIC-only peer dialled after %v", d[pubQUIC])
	}
	// Relayed alone, as the default: at once.
	if d := delays(t, relayed); d[relayed] != 0 {
		t.Errorf("relay-only peer dialled after %v", d[relayed])
	}
}

// Two real swarms, built from the node's own transports (TCP and QUIC, TLS,
// yamux), both listening on TCP and QUIC: with the ranker the dialler ends
// up on TCP, with libp2p's default on QUIC.
func TestDialRankerConnectsOverTCP(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ranker network.DialRanker
		want   int
	}{
		{"fungi", dialRanker(), ma.P_TCP},
		{"default", swarm.DefaultDialRanker, ma.P_QUIC_V1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := rankedSwarm(t, swarm.DefaultDialRanker)
			client := rankedSwarm(t, tc.ranker)
			client.Peerstore().AddAddrs(server.LocalPeer(), server.ListenAddresses(), time.Minute)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, err := client.DialPeer(ctx, server.LocalPeer())
			if err != nil {
				t.Fatal(err)
			}
			if !addrHas(conn.RemoteMultiaddr(), tc.want) {
				t.Errorf("connected over %s, want %s", conn.RemoteMultiaddr(), ma.ProtocolWithCode(tc.want).Name)
			}
		})
	}
}

func rankedSwarm(t *testing.T, ranker network.DialRanker) *swarm.Swarm {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	rm := &network.NullResourceManager{}
	tps, err := newTransports(priv, nil, rm)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tps.quicCM.Close() })
	sw, err := newSwarm(priv, eventbus.NewBus(), tps, swarm.WithDialRanker(ranker), swarm.WithResourceManager(rm))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Close() })
	if err := sw.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0"), ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")); err != nil {
		t.Fatal(err)
	}
	return sw
}
