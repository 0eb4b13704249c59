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
// relays than the routing table knows; relayTopUpTimeout bounds it when
// some were found already. A query ends only when the closest peers it met
// answered or timed out, and a DHT client's private addresses never
// answer: right after a start, with one bootstrap peer in the table, the
// keeper waited the full 10 s for its second candidate before it took a
// slot on the first (a restarted device unreachable for 10–15 s).
const (
	relayQueryTimeout = 10 * time.Second
	relayTopUpTimeout = 2 * time.Second
)

// RelayCandidates are up to max DHT nodes that offer circuit-relay v2 (they
// said so in identify), with the addresses this node knows for them: the
// connected ones first, then the routing table's, then those a
// closest-peers query for this node's own ID meets. The relays found so are AutoRelay's candidates: a
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
	// Connected peers first: the bootstrap peers are, as soon as identify
	// has told what they serve, before the routing table takes them.
	consider(d.host.Network().Peers())
	consider(d.kad.RoutingTable().ListPeers())
	if len(out) < max {
		timeout := relayQueryTimeout
		if len(out) > 0 {
			timeout = relayTopUpTimeout
		}
		qctx, cancel := context.WithTimeout(ctx, timeout)
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
