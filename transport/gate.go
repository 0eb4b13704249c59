package transport

import (
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	circuitproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/fungi-go/fungi/transport/pair"
)

// TrustGate decides who gets in, at the handshake, before any protocol
// runs: a peer this node trusts (it then has a role, "access" or "admin"),
// or one its owner added to dial. Anyone else is refused. The device book
// is its only writer.
//
// Two things besides: every stranger refused at the handshake is recorded
// as a pending device (Pending), and while an invite is open
// (pair.Pairing) a bounded number of strangers get in as pairing guests,
// who may use the pairing protocol and nothing of fungi's own, for a
// short window (and a bounded number more, briefly, to be told pairing is
// busy).
type TrustGate struct {
	mu    sync.RWMutex
	roles map[peer.ID]string
	dial  map[peer.ID]bool

	pending *pendingPeers
	pairing *pair.Pairing
	// probers is the host whose peers may dial this node back to test its
	// reachability (see probe); nil until the host starts.
	probers host.Host
	// routing admits the strangers this node dials for its own lookups
	// (routingpeers.go); nil when the node does no routing.
	routing *routingPeers
}

// AllowRouting lets this node dial strangers for its own lookups (the DHT
// servers a query walks to, relays found through the DHT), a bounded
// number with small limits. Call it before the host starts.
func (g *TrustGate) AllowRouting() {
	g.mu.Lock()
	g.routing = newRoutingPeers()
	g.mu.Unlock()
}

// routingPeer reports whether p holds a routing place now.
func (g *TrustGate) routingPeer(p peer.ID) bool {
	g.mu.RLock()
	r := g.routing
	g.mu.RUnlock()
	return r != nil && r.has(p)
}

// mayDial reports whether this node may dial p: an admitted peer, or any
// peer when it does routing (the handshake then decides, see
// InterceptSecured).
func (g *TrustGate) mayDial(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.roles[p] != "" || g.dial[p] || g.routing != nil
}

// NewTrustGate returns a gate that admits nobody yet.
func NewTrustGate() *TrustGate {
	return &TrustGate{roles: map[peer.ID]string{}, dial: map[peer.ID]bool{}, pending: newPendingPeers()}
}

// SetPairing lets strangers in as pairing guests while p has an invite
// open. Call it before the host starts.
func (g *TrustGate) SetPairing(p *pair.Pairing) {
	g.mu.Lock()
	g.pairing = p
	g.mu.Unlock()
}

// Set replaces the trusted peers with their roles, and the dial targets. A
// peer now admitted is no longer pending.
func (g *TrustGate) Set(roles map[peer.ID]string, dial map[peer.ID]bool) {
	g.mu.Lock()
	g.roles, g.dial = roles, dial
	g.mu.Unlock()
	for p := range roles {
		g.pending.forget(p)
	}
	for p := range dial {
		g.pending.forget(p)
	}
}

// Pending lists the strangers refused at the handshake, latest first.
func (g *TrustGate) Pending() []PendingPeer { return g.pending.list() }

// Dismiss drops p from the pending list, reporting whether it was there;
// a dismissed stranger that tries again is listed again.
func (g *TrustGate) Dismiss(p peer.ID) bool { return g.pending.forget(p) }

// Role is the role of p ("access" or "admin"), or "" when p may use
// nothing on this node.
func (g *TrustGate) Role(p peer.ID) string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.roles[p]
}

// Admitted reports whether p may hold a connection to this node.
func (g *TrustGate) Admitted(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.roles[p] != "" || g.dial[p]
}

func (g *TrustGate) InterceptPeerDial(p peer.ID) bool                 { return g.mayDial(p) }
func (g *TrustGate) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.mayDial(p) }
func (g *TrustGate) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *TrustGate) InterceptSecured(dir network.Direction, p peer.ID, addrs network.ConnMultiaddrs) bool {
	if g.Admitted(p) {
		return true
	}
	g.mu.RLock()
	pairing, probers, routing := g.pairing, g.probers, g.routing
	g.mu.RUnlock()
	if dir != network.DirInbound {
		// A stranger this node dialed: a DHT server or relay of its own
		// lookups, within the routing places.
		return routing != nil && routing.admit(p)
	}
	// Recorded even when it gets in as a guest: a guest that never proves
	// an invite is a stranger the owner may still want to see. A probe is
	// not a device wanting in.
	if !isProbe(probers, g, addrs.RemoteMultiaddr()) {
		g.pending.record(p, addrs.RemoteMultiaddr())
	}
	return pairing != nil && pairing.AdmitGuest(p)
}

// setProbers tells the gate the host it guards, whose peers' dial-backs
// are no pending devices.
func (g *TrustGate) setProbers(h host.Host) {
	g.mu.Lock()
	g.probers = h
	g.mu.Unlock()
}

// proberProtocols mark a peer that dials this node back to test its
// reachability: AutoNAT v1 and v2 servers (v2's name is spelled out so
// that its package is not linked for a string) and circuit relays, which
// serve AutoNAT beside relaying (NewRelay).
var proberProtocols = []protocol.ID{autonat.AutoNATProto, "/libp2p/autonat/2/dial-request", circuitproto.ProtoIDv2Hop}

// isProbe reports whether a stranger's connection from remote is a
// reachability probe: an AutoNAT dial-back, which comes from a throwaway
// identity on the server's own machine, so from the IP address of a peer
// this node is connected to and that serves AutoNAT or relays for it (a
// configured relay). Such a stranger is not a device that wants to
// connect, and `device pending` leaves it out. A stranger coming through
// a relay is never one: AutoNAT dials back directly.
func isProbe(h host.Host, g *TrustGate, remote ma.Multiaddr) bool {
	if h == nil || remote == nil || isRelayed(remote) {
		return false
	}
	ip, err := manet.ToIP(remote)
	if err != nil {
		return false
	}
	sameIP := func(a ma.Multiaddr) bool {
		if isRelayed(a) {
			return false
		}
		other, err := manet.ToIP(a)
		return err == nil && other.Equal(ip)
	}
	for _, p := range h.Network().Peers() {
		if !g.Admitted(p) {
			continue
		}
		if speaks, err := h.Peerstore().SupportsProtocols(p, proberProtocols...); err != nil || len(speaks) == 0 {
			continue
		}
		for _, c := range h.Network().ConnsToPeer(p) {
			if sameIP(c.RemoteMultiaddr()) {
				return true
			}
		}
		// A server with several addresses may dial back from another
		// (IPv6 where it was reached over IPv4): those it announced count.
		if slices.ContainsFunc(h.Peerstore().Addrs(p), sameIP) {
			return true
		}
	}
	return false
}

func (g *TrustGate) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}
