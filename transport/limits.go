package transport

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Stream limits of the resource manager. libp2p's defaults are made for
// strangers on a public network and cap one peer at about 75 streams per
// protocol; a fungi node only talks to its owner's devices, where one
// access entry may carry a thousand connections at once. Strangers never
// get that far: the gate refuses them at the handshake, and their peer
// scope allows only what pairing needs (guestLimits).
const (
	// TrustedPeerStreams is how many streams an admitted peer may have open
	// with this node at once in each direction.
	TrustedPeerStreams = 4096
	// NodeStreams is how many streams the node holds in all.
	NodeStreams = 16384
	// trustedPeerConns is how many connections a trusted peer may hold.
	trustedPeerConns = 32
)

// trustedPeerStreams is TrustedPeerStreams, smaller in tests that reach it.
var trustedPeerStreams = TrustedPeerStreams

// ErrStreamLimit marks a stream that a resource limit refused, on this node
// or on the peer: wait for connections to end, or spread the load.
var ErrStreamLimit = errors.New("stream limit reached")

// guestLimits are those of a peer the gate has not admitted: what the
// pairing protocol needs, and no more. A few connections (a joiner may
// reach the inviter over TCP, QUIC and a relay at once), their identify
// and ping streams and the one pairing stream, and the memory of their
// windows. Such a peer holds a connection only briefly: a stranger until
// the gate closes it at the handshake (QUIC counts a connection against
// its peer before the gate sees it: go-libp2p's QUIC listener calls
// SetPeer, then InterceptSecured, so a peer scope with no room refused
// every joiner of an inviter reached over QUIC before pairing could let
// it in); a pairing guest until its window ends; a joiner between its
// proof and its trust, or refused and shut out a moment later. It keeps
// these limits all along: a yamux connection whose peer may reserve no
// memory for a new stream is torn down, and with it the pairing answer.
var guestLimits = rcmgr.BaseLimit{
	Conns: 4, ConnsInbound: 4, FD: 4,
	Streams: 16, StreamsInbound: 12, StreamsOutbound: 8,
	Memory: 16 << 20,
}

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
// an admitted peer's are the trusted ones (TrustedPeerStreams), anyone
// else's guestLimits. Fungi's own protocols still reset a guest's streams
// (they check the role); what bounds guests is their number and their
// window (Pairing), and the gate, which refuses other strangers at the
// handshake.
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
	return guestLimits
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
		Streams:         rcmgr.LimitVal(NodeStreams),
		StreamsInbound:  rcmgr.LimitVal(NodeStreams),
		StreamsOutbound: rcmgr.LimitVal(NodeStreams),
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
	ours := map[protocol.ID]rcmgr.ResourceLimits{ControlProtocol: perPeer, AccessProtocol: perPeer}
	cfg := rcmgr.PartialLimitConfig{
		System:       node,
		Transient:    node,
		Protocol:     map[protocol.ID]rcmgr.ResourceLimits{ControlProtocol: node, AccessProtocol: node},
		ProtocolPeer: ours,
		PeerDefault:  perPeer,
	}.Build(scaling.AutoScale())
	base := rcmgr.NewFixedLimiter(cfg)
	return rcmgr.NewResourceManager(&gateLimiter{Limiter: base, gate: gate, trusted: base.GetPeerLimits("")}, connLimits()...)
}

// isLimitReset reports whether err is a stream the other side reset
// because one of its resource limits was reached.
func isLimitReset(err error) bool {
	var se *network.StreamError
	return errors.As(err, &se) && se.ErrorCode == network.StreamResourceLimitExceeded
}

// streamOpenError explains a failed NewStream.
func streamOpenError(err error) error {
	if errors.Is(err, network.ErrResourceLimitExceeded) {
		return fmt.Errorf("%w: this node already has as many streams open as it allows (%d per peer, %d in all); wait for some connections to end: %v",
			ErrStreamLimit, trustedPeerStreams, NodeStreams, err)
	}
	return explainReset(err)
}

// explainReset turns the peer's refusal of a stream into words; libp2p's
// own says only "stream reset".
func explainReset(err error) error {
	if isLimitReset(err) {
		return fmt.Errorf("%w: the peer refused the stream, it has as many open as it allows (%d per peer on a fungi node); wait for some connections to end: %v",
			ErrStreamLimit, trustedPeerStreams, err)
	}
	if errors.Is(err, network.ErrReset) {
		return fmt.Errorf("the peer closed the stream before answering (it may be stopping, or have untrusted this node): %w", err)
	}
	return err
}
