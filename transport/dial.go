package transport

import (
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// freshDial lets a connection the user asks for now dial p even if an
// earlier dial failed: libp2p's swarm otherwise refuses to dial an address
// for seconds after a failure ("dial backoff"), so the first request after
// both nodes restarted would fail although the peer is back. The relays p
// is reached through are cleared too: a reservation tried while the relay
// was restarting puts the relay in backoff, and every relayed dial with it.
// A device added by peer ID alone is dialed through every relay this node
// holds a reservation on, as its session does: a command right after
// `device add` must not find the peer without addresses.
func freshDial(h host.Host, p peer.ID) {
	if h.Network().Connectedness(p) == network.Connected {
		return
	}
	var via []ma.Multiaddr
	for _, a := range h.Addrs() {
		if relayOf(a) != "" {
			via = append(via, a)
		}
	}
	if len(via) > 0 {
		h.Peerstore().AddAddrs(p, via, relayedAddrTTL)
	}
	s, ok := h.Network().(interface{ Backoff() *swarm.DialBackoff })
	if !ok {
		return
	}
	s.Backoff().Clear(p)
	for _, a := range h.Peerstore().Addrs(p) {
		if relay := relayOf(a); relay != "" {
			s.Backoff().Clear(relay)
		}
	}
}

// relayOf is the relay a /p2p-circuit address goes through, or "".
func relayOf(a ma.Multiaddr) peer.ID {
	var last peer.ID
	for _, c := range a {
		switch c.Code() {
		case ma.P_P2P:
			if id, err := peer.Decode(c.Value()); err == nil {
				last = id
			}
		case ma.P_CIRCUIT:
			return last
		}
	}
	return ""
}
