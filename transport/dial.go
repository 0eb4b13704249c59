package transport

import (
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// freshDial lets a connection the user asks for now dial p even if an
// earlier dial failed: libp2p's swarm otherwise refuses to dial an address
// for seconds after a failure ("dial backoff"), so the first request after
// both nodes restarted would fail although the peer is back.
func freshDial(h host.Host, p peer.ID) {
	if h.Network().Connectedness(p) == network.Connected {
		return
	}
	if s, ok := h.Network().(interface{ Backoff() *swarm.DialBackoff }); ok {
		s.Backoff().Clear(p)
	}
}
