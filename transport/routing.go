package transport

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	circuitproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"
)

// PeerRouting finds where a peer is now: the DHT (transport/discovery).
type PeerRouting interface {
	// FindPeer returns p's current addresses; the lookup may leave a
	// connection to p open.
	FindPeer(ctx context.Context, p peer.ID) (peer.AddrInfo, error)
	// BootstrapPeers are the DHT nodes the owner named; the gate lets
	// them through as it does relays.
	BootstrapPeers() []peer.ID
}

// lookupAfter is how long a dial on a peer's known addresses runs alone
// before the DHT is asked too. A device that moved fails its old addresses
// only when the dial gives up (a QUIC dial to a port nobody listens on waits
// for its handshake timeout), so the lookup does not wait for that.
const lookupAfter = time.Second

// connectRouted connects to p as connect does; when that fails, or has
// not succeeded after lookupAfter, it asks routing where p is now and dials
// that too. Whichever succeeds first wins.
func connectRouted(ctx context.Context, h host.Host, routing PeerRouting, p peer.ID, connect func(context.Context) error) error {
	clearDialBackoff(h, p)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	known := make(chan error, 1)
	go func() { known <- connect(ctx) }()
	var knownErr error
	timer := time.NewTimer(lookupAfter)
	defer timer.Stop()
	select {
	case err := <-known:
		if err == nil || ctx.Err() != nil {
			return err
		}
		knownErr = err
		known = nil
	case <-timer.C:
	}
	found := make(chan error, 1)
	go func() {
		ai, err := routing.FindPeer(ctx, p)
		if err == nil {
			err = h.Connect(ctx, ai)
		}
		found <- err
	}()
	var foundErr error
	for knownErr == nil || foundErr == nil {
		select {
		case err := <-known:
			if err == nil {
				return nil
			}
			knownErr, known = err, nil
		case err := <-found:
			if err == nil {
				return nil
			}
			foundErr, found = err, nil
		}
	}
	return fmt.Errorf("%w; nor through the DHT: %v", knownErr, foundErr)
}

// clearDialBackoff forgets the swarm's dial backoff on p's addresses. A
// device that restarts comes back on the same relayed addresses it had
// (its relays are the same), which failed while it was down; the swarm
// backs off an address 5 s plus a second per failure squared, so a device
// dialed every few seconds while away stayed unreachable for 15 s and
// more after it was back. The callers pace their own dials (a session's
// backoff, a user's command), so the swarm's adds only delay.
func clearDialBackoff(h host.Host, p peer.ID) {
	if sw, ok := h.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(p)
	}
}

// withBootstrap adds routing's bootstrap peers to the peers the gate lets
// dial and be dialed by.
func withBootstrap(dial map[peer.ID]bool, routing PeerRouting) map[peer.ID]bool {
	if routing == nil {
		return dial
	}
	out := maps.Clone(dial)
	if out == nil {
		out = map[peer.ID]bool{}
	}
	for _, p := range routing.BootstrapPeers() {
		out[p] = true
	}
	return out
}

// relayFinder is a PeerRouting that also finds relays (the DHT).
type relayFinder interface {
	RelayCandidates(ctx context.Context, max int, skip []peer.ID) []peer.AddrInfo
}

// FindRelays are up to max relays found through the DHT, none of skip;
// nothing when discovery is off. The relay keeper takes slots on them when
// this node is not publicly reachable and its configured relays give it
// too few.
//
// Trusted devices connected now that relay (a publicly reachable device
// relays for its owner's others, RelayForTrusted) come first, then relays
// found through the DHT.
func (n *Network) FindRelays(ctx context.Context, max int, skip []peer.ID) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, p := range n.Host.Network().Peers() {
		if len(out) >= max {
			return out
		}
		if n.Gate.Role(p) == "" || slices.Contains(skip, p) {
			continue
		}
		if hop, err := n.Host.Peerstore().SupportsProtocols(p, circuitproto.ProtoIDv2Hop); err != nil || len(hop) == 0 {
			continue
		}
		addrs := slices.DeleteFunc(slices.Clone(n.Host.Peerstore().Addrs(p)), isRelayed)
		if len(addrs) > 0 {
			out = append(out, peer.AddrInfo{ID: p, Addrs: addrs})
			skip = append(skip, p)
		}
	}
	f, ok := n.Routing.(relayFinder)
	if !ok || len(out) >= max {
		return out
	}
	return append(out, f.RelayCandidates(ctx, max-len(out), skip)...)
}

// AnnouncedAddrs are the addresses this node knows for p while p is
// connected (identify's, with those it dialed or was dialed from), nil
// otherwise: the device book takes them when it comes to trust a peer that
// identify told about before it was trusted (a joiner, or a pending
// device accepted while connected).
func (n *Network) AnnouncedAddrs(p peer.ID) []ma.Multiaddr {
	if !n.Connected(p) {
		return nil
	}
	return n.Host.Peerstore().Addrs(p)
}
