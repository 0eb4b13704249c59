// Package transport is a node's presence on the network: the libp2p host
// built from its identity, the trust gate in front of it, and (with the
// peers work) the stream protocols.
package transport

import (
	"fmt"
	"sync"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// NewHost starts a libp2p host with the node's key, listening on listen:
// TCP and QUIC, Noise and TLS, yamux. The gate decides who gets in.
func NewHost(priv crypto.PrivKey, listen []string, gate *TrustGate) (host.Host, error) {
	h, err := libp2p.New(
		libp2p.Identity(priv),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionGater(gate),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		return nil, fmt.Errorf("start the peer host on %v: %w", listen, err)
	}
	return h, nil
}

// Addrs are the host's listen addresses, each ending /p2p/<id>, the form
// another node's `fungi device add --addr` takes.
func Addrs(h host.Host) []string {
	p2p, _ := ma.NewComponent("p2p", h.ID().String())
	var out []string
	for _, a := range h.Addrs() {
		out = append(out, a.Encapsulate(p2p).String())
	}
	return out
}

// TrustGate lets in only the peers the node's owner trusts, at the
// handshake, before any protocol runs.
type TrustGate struct {
	mu      sync.RWMutex
	trusted map[peer.ID]bool
}

// NewTrustGate returns a gate that trusts exactly the given peers.
func NewTrustGate(trusted ...peer.ID) *TrustGate {
	g := &TrustGate{trusted: map[peer.ID]bool{}}
	for _, p := range trusted {
		g.trusted[p] = true
	}
	return g
}

// Trusted reports whether p may connect.
func (g *TrustGate) Trusted(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.trusted[p]
}

func (g *TrustGate) InterceptPeerDial(p peer.ID) bool                 { return g.Trusted(p) }
func (g *TrustGate) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.Trusted(p) }
func (g *TrustGate) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g *TrustGate) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.Trusted(p)
}
func (g *TrustGate) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}
