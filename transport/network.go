package transport

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/pair"
	"github.com/fungi-go/fungi/transport/wire"
)

// Network is the libp2p host seen as the actors need it.
type Network struct {
	Host   host.Host
	Gate   *TrustGate
	Relays *Relays
	// Routing finds a device whose known addresses fail (the DHT); nil
	// when discovery is off.
	Routing PeerRouting
	// pairing holds the open invites; nil until the first invite.
	pairing *pair.Pairing

	mu           sync.Mutex
	reachability network.Reachability
}

// WatchReachability follows what AutoNAT says of this node.
func (n *Network) WatchReachability() error {
	sub, err := n.Host.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		return err
	}
	go func() {
		for e := range sub.Out() {
			n.mu.Lock()
			n.reachability = e.(event.EvtLocalReachabilityChanged).Reachability
			n.mu.Unlock()
		}
	}()
	return nil
}

// Pairing serves the pairing protocol from the first call on, with paired
// trusting whoever redeems an invite, and returns the node's invites. A
// node that never invites never admits a guest.
func (n *Network) Pairing(paired pair.Paired) *pair.Pairing {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pairing == nil {
		n.pairing = pair.Serve(n.Host, n.Gate, paired, func(joiner peer.ID) { punchJoined(n.Host, joiner) })
	}
	return n.pairing
}

// Reachability is AutoNAT's latest verdict: public, private or unknown.
func (n *Network) Reachability() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.reachability {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// Reserve keeps a reservation on a relay.
func (n *Network) Reserve(ctx context.Context, relay peer.AddrInfo) (time.Time, error) {
	return n.Relays.Reserve(ctx, n.Host, relay)
}

func (n *Network) SetGate(roles map[peer.ID]string, dial map[peer.ID]bool) {
	n.Gate.Set(roles, withBootstrap(dial, n.Routing))
}

func (n *Network) AddAddrs(p peer.ID, addrs []ma.Multiaddr) {
	if len(addrs) > 0 {
		n.Host.Peerstore().AddAddrs(p, addrs, peerstore.PermanentAddrTTL)
	}
}

func (n *Network) ClosePeer(p peer.ID) { n.Host.Network().ClosePeer(p) }

// Connect dials p on every address known for it at once: those the owner
// gave or libp2p learned, and a relayed one through every relay this node
// asked for a slot, so a device two nodes share a relay with is reached by
// its peer ID alone, even while this node's own reservation is being taken.
func (n *Network) Connect(ctx context.Context, p peer.ID) error {
	if n.Relays != nil {
		if via := n.Relays.Via(); len(via) > 0 {
			n.Host.Peerstore().AddAddrs(p, via, relayedAddrTTL)
		}
	}
	if n.Routing == nil {
		return n.Host.Connect(ctx, peer.AddrInfo{ID: p})
	}
	return connectRouted(ctx, n.Host, n.Routing, p, func(ctx context.Context) error {
		return n.Host.Connect(ctx, peer.AddrInfo{ID: p})
	})
}

// relayedAddrTTL keeps the guessed relayed addresses of a peer for a while
// after a dial; the next dial adds them again.
const relayedAddrTTL = 10 * time.Minute

// Connected reports whether p has a connection, direct or relayed (libp2p
// calls a relayed-only peer Limited).
func (n *Network) Connected(p peer.ID) bool {
	c := n.Host.Network().Connectedness(p)
	return c == network.Connected || c == network.Limited
}

// ConnAddr is the address of the connection to p that new streams take: a
// direct one when there is one, else a relayed one; "" when none.
func (n *Network) ConnAddr(p peer.ID) string {
	var relayed string
	for _, c := range n.Host.Network().ConnsToPeer(p) {
		if relayedConn(c) {
			relayed = c.RemoteMultiaddr().String()
			continue
		}
		return c.RemoteMultiaddr().String()
	}
	return relayed
}

// Ping measures one round trip to p; libp2p records it in the peerstore,
// where connection list reads it.
func (n *Network) Ping(ctx context.Context, p peer.ID) (time.Duration, error) {
	r := <-ping.Ping(network.WithAllowLimitedConn(ctx, "fungi ping"), n.Host, p)
	return r.RTT, r.Error
}

// OnDisconnect calls f when the last connection to a peer closes.
func (n *Network) OnDisconnect(f func(peer.ID)) {
	n.Host.Network().Notify(&network.NotifyBundle{
		DisconnectedF: func(nw network.Network, c network.Conn) {
			if nw.Connectedness(c.RemotePeer()) != network.Connected {
				go f(c.RemotePeer())
			}
		},
	})
}

// StartMDNS announces the node on the LAN and reports the peers it sees.
func (n *Network) StartMDNS(found func(peer.AddrInfo)) (func() error, error) {
	svc := mdns.NewMdnsService(n.Host, "fungi", mdnsNotifee(found))
	if err := svc.Start(); err != nil {
		return nil, err
	}
	return svc.Close, nil
}

type mdnsNotifee func(peer.AddrInfo)

func (f mdnsNotifee) HandlePeerFound(info peer.AddrInfo) { f(info) }

// Connections describes every open connection.
func (n *Network) Connections(alias func(peer.ID) string) []*messages.ConnectionInfo {
	var out []*messages.ConnectionInfo
	for _, c := range n.Host.Network().Conns() {
		out = append(out, n.describe(c, alias))
	}
	return out
}

func (n *Network) describe(c network.Conn, alias func(peer.ID) string) *messages.ConnectionInfo {
	p := c.RemotePeer()
	stat := c.Stat()
	info := &messages.ConnectionInfo{
		PeerId:     p.String(),
		Alias:      alias(p),
		RemoteAddr: c.RemoteMultiaddr().String(),
		Direction:  "inbound",
		Relayed:    relayedConn(c),
		Transport:  transportName(c.RemoteMultiaddr()),
		RttMs:      float64(n.Host.Peerstore().LatencyEWMA(p)) / float64(time.Millisecond),
		OpenedAt:   stat.Opened.UTC().Format(time.RFC3339),
	}
	if pu := n.puncher(); pu != nil && info.Relayed {
		if ps, ok := pu.State(p); ok {
			info.PunchError = ps.Error
			if !ps.LastTry.IsZero() {
				info.PunchLastTry = ps.LastTry.Format(time.RFC3339)
			}
			if !ps.NextTry.IsZero() {
				info.PunchNextTry = ps.NextTry.UTC().Format(time.RFC3339)
			}
		}
	}
	if stat.Direction == network.DirOutbound {
		info.Direction = "outbound"
	}
	return info
}

// isRelayed and relayedConn are wire.RelayedAddr and wire.Relayed, by
// the short names the files of this package use.
func isRelayed(a ma.Multiaddr) bool   { return wire.RelayedAddr(a) }
func relayedConn(c network.Conn) bool { return wire.Relayed(c) }

func transportName(a ma.Multiaddr) string {
	for _, p := range []int{ma.P_QUIC_V1, ma.P_TCP, ma.P_UDP} {
		if _, err := a.ValueForProtocol(p); err == nil {
			return ma.ProtocolWithCode(p).Name
		}
	}
	return a.String()
}
