package discovery

import (
	"context"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	circuitproto "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"
)

// MaxRelayCandidates bounds one answer of RelayCandidates.
const MaxRelayCandidates = 8

// relayQueryTimeout bounds the closest-peers query that looks for more
// relays than the routing table knows.
const relayQueryTimeout = 10 * time.Second

// RelayCandidates are up to max DHT nodes that offer circuit-relay v2 (they
// said so in identify), with the addresses this node knows for them, the
// routing table's first and then those a closest-peers query for this
// node's own ID meets. The relays found so are AutoRelay's candidates: a
// node behind NAT takes a slot on one when it has no configured relay.
// skip are peers not to offer (relays already in use).
func (d *DHT) RelayCandidates(ctx context.Context, max int, skip []peer.ID) []peer.AddrInfo {
	max = min(max, MaxRelayCandidates)
	if max <= 0 {
		return nil
	}
	d.awaitTable(ctx)
	var out []peer.AddrInfo
	seen := map[peer.ID]bool{d.host.ID(): true}
	for _, p := range skip {
		seen[p] = true
	}
	consider := func(ps []peer.ID) {
		for _, p := range ps {
			if len(out) == max {
				return
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			if ai, ok := d.relay(p); ok {
				out = append(out, ai)
			}
		}
	}
	consider(d.kad.RoutingTable().ListPeers())
	if len(out) < max {
		qctx, cancel := context.WithTimeout(ctx, relayQueryTimeout)
		defer cancel()
		if ps, err := d.kad.GetClosestPeers(qctx, string(d.host.ID())); err == nil {
			consider(ps)
		}
	}
	return out
}

// relay is p as a relay candidate: it speaks the hop protocol and has a
// direct address this node knows.
func (d *DHT) relay(p peer.ID) (peer.AddrInfo, bool) {
	if hop, err := d.host.Peerstore().SupportsProtocols(p, circuitproto.ProtoIDv2Hop); err != nil || len(hop) == 0 {
		return peer.AddrInfo{}, false
	}
	addrs := slices.DeleteFunc(slices.Clone(d.host.Peerstore().Addrs(p)), func(a ma.Multiaddr) bool {
		_, err := a.ValueForProtocol(ma.P_CIRCUIT)
		return err == nil
	})
	if len(addrs) == 0 {
		return peer.AddrInfo{}, false
	}
	return peer.AddrInfo{ID: p, Addrs: addrs}, true
}
