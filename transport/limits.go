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
// scope allows nothing.
const (
	// TrustedPeerStreams is how many streams an admitted peer may have open
	// with this node at once in each direction.
	TrustedPeerStreams = 4096
	// NodeStreams is how many streams the node holds in all.
	NodeStreams = 16384
)

// trustedPeerStreams is TrustedPeerStreams, smaller in tests that reach it.
var trustedPeerStreams = TrustedPeerStreams

// ErrStreamLimit marks a stream that a resource limit refused, on this node
// or on the peer: wait for connections to end, or spread the load.
var ErrStreamLimit = errors.New("stream limit reached")

// gateLimiter gives admitted peers TrustedPeerStreams and everyone else
// zero, on top of the node-wide limits. libp2p asks it once per peer scope,
// which lives while the peer has connections.
type gateLimiter struct {
	rcmgr.Limiter
	gate    *TrustGate
	trusted rcmgr.Limit
}

func (l *gateLimiter) GetPeerLimits(p peer.ID) rcmgr.Limit {
	// A pairing guest gets the trusted limits too: libp2p keeps a peer's
	// limits while it has connections, and a guest that pairs becomes
	// trusted on the connection it came in on. Until then fungi's own
	// protocols reset its streams (they check the role). A stranger let in
	// to hear that pairing is busy gets them as well, since it may take a
	// guest's slot on the same connection; what bounds both is their
	// number and their window (Pairing).
	if l.gate.Admitted(p) || l.gate.guest(p) {
		return l.trusted
	}
	return &rcmgr.BaseLimit{}
}

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
