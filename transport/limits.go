package transport

import (
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"

	"github.com/fungi-go/fungi/transport/pair"
	"github.com/fungi-go/fungi/transport/wire"
)

// trustedPeerConns is how many connections a trusted peer may hold. Its
// streams and the node's are bounded by wire.TrustedPeerStreams and
// wire.NodeStreams. Strangers never get that far: the gate refuses them
// at the handshake, and their peer scope allows only what pairing needs
// (pair.GuestLimits).
const trustedPeerConns = 32

// trustedPeerStreams is wire.TrustedPeerStreams, smaller in tests that
// reach it.
var trustedPeerStreams = wire.TrustedPeerStreams

// gateLimiter sizes each peer's scope by what the gate says of it now.
type gateLimiter struct {
	rcmgr.Limiter
	gate    *TrustGate
	trusted rcmgr.Limit
}

// GetPeerLimits is asked once per peer scope, which libp2p keeps while
// the peer has connections and for up to a minute after; a fixed answer
// would hold a joiner that pairs to a guest's limits. So the answer is a
// limit that asks the gate at every reservation.
func (l *gateLimiter) GetPeerLimits(p peer.ID) rcmgr.Limit {
	return &peerLimit{gate: l.gate, peer: p, trusted: l.trusted}
}

// peerLimit is one peer's limits as the gate sees it at each reservation:
// an admitted peer's are the trusted ones (wire.TrustedPeerStreams),
// anyone else's pair.GuestLimits. Fungi's own protocols still reset a
// guest's streams (they check the role); what bounds guests is their
// number and their window (pair.Pairing), and the gate, which refuses
// other strangers at the handshake.
type peerLimit struct {
	gate    *TrustGate
	peer    peer.ID
	trusted rcmgr.Limit
}

func (l *peerLimit) now() rcmgr.Limit {
	if l.gate.Admitted(l.peer) {
		return l.trusted
	}
	if l.gate.routingPeer(l.peer) {
		return routingLimits
	}
	return pair.GuestLimits
}

func (l *peerLimit) GetMemoryLimit() int64                  { return l.now().GetMemoryLimit() }
func (l *peerLimit) GetStreamLimit(d network.Direction) int { return l.now().GetStreamLimit(d) }
func (l *peerLimit) GetStreamTotalLimit() int               { return l.now().GetStreamTotalLimit() }
func (l *peerLimit) GetConnLimit(d network.Direction) int   { return l.now().GetConnLimit(d) }
func (l *peerLimit) GetConnTotalLimit() int                 { return l.now().GetConnTotalLimit() }
func (l *peerLimit) GetFDLimit() int                        { return l.now().GetFDLimit() }

// newResourceManager builds the resource manager of a node's host.
func newResourceManager(gate *TrustGate) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	setServiceLimits(&scaling)
	node := rcmgr.ResourceLimits{
		Streams:         rcmgr.LimitVal(wire.NodeStreams),
		StreamsInbound:  rcmgr.LimitVal(wire.NodeStreams),
		StreamsOutbound: rcmgr.LimitVal(wire.NodeStreams),
	}
	perPeer := rcmgr.ResourceLimits{
		// A trusted peer may hold more connections than libp2p's 8: after
		// it moved or restarted, circuits through relays to where it was
		// stay counted until the relay notices, and its new ones were
		// refused the moment they opened.
		Conns:           rcmgr.LimitVal(trustedPeerConns),
		ConnsInbound:    rcmgr.LimitVal(trustedPeerConns),
		ConnsOutbound:   rcmgr.LimitVal(trustedPeerConns),
		Streams:         rcmgr.LimitVal(2 * trustedPeerStreams),
		StreamsInbound:  rcmgr.LimitVal(trustedPeerStreams),
		StreamsOutbound: rcmgr.LimitVal(trustedPeerStreams),
	}
	ours := map[protocol.ID]rcmgr.ResourceLimits{wire.ControlProtocol: perPeer, wire.AccessProtocol: perPeer, wire.AccessReuseProtocol: perPeer}
	cfg := rcmgr.PartialLimitConfig{
		System:       node,
		Transient:    node,
		Protocol:     map[protocol.ID]rcmgr.ResourceLimits{wire.ControlProtocol: node, wire.AccessProtocol: node, wire.AccessReuseProtocol: node},
		ProtocolPeer: ours,
		PeerDefault:  perPeer,
	}.Build(scaling.AutoScale())
	base := rcmgr.NewFixedLimiter(cfg)
	return rcmgr.NewResourceManager(&gateLimiter{Limiter: base, gate: gate, trusted: base.GetPeerLimits("")}, connLimits()...)
}
