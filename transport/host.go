// Package transport is a node's presence on the network: the libp2p host
// built from its identity, the trust gate in front of it, the control
// protocol, hole punching, relays and routing. The access protocol
// (transport/access) and pairing (transport/pair) are packages of their
// own, which transport imports and wires to the host; transport/wire is
// what all of them share (frames, protocol IDs, errors).
package transport

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/p2p/host/observedaddrs"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fungi-go/fungi/transport/access"
)

// NewHost starts a libp2p host with the node's key, listening on listen:
// TCP and QUIC, TLS and Noise, yamux, the circuit-relay client, hole
// punching, AutoNAT and, with portMapping, UPnP/NAT-PMP port mapping on the
// gateway. The gate decides who gets in, and sizes the resource limits: an
// admitted peer may hold wire.TrustedPeerStreams streams, a stranger none.
// relays (may be nil) adds the relayed addresses of its reservations to the
// host's own.
func NewHost(priv crypto.PrivKey, listen []string, gate *TrustGate, relays *Relays, portMapping bool) (host.Host, error) {
	rm, err := newResourceManager(gate)
	if err != nil {
		return nil, fmt.Errorf("set up the peer host's resource limits: %w", err)
	}
	cfg := nodeConfig{priv: priv, listen: listen, gater: gate, rm: rm, relayClient: true, portMapping: portMapping}
	if relays != nil {
		cfg.addrsFactory = func(addrs []ma.Multiaddr) []ma.Multiaddr {
			return append(addrs, relays.Addrs()...)
		}
	}
	h, err := newNode(cfg)
	if err != nil {
		return nil, fmt.Errorf("start the peer host on %v: %w", listen, err)
	}
	gate.setProbers(h)
	// Hole punching runs beside the host rather than inside it, so a
	// relayed connection can be punched again later (see Puncher).
	puncher, err := startPuncher(h)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("start hole punching: %w", err)
	}
	return &punchingHost{Host: h, puncher: puncher, relays: relays}, nil
}

// punchingHost is the libp2p host with the node's hole puncher.
type punchingHost struct {
	host.Host
	puncher *Puncher
	relays  *Relays // nil without relays
}

// RelayVia are the circuit addresses through every relay this node uses
// (see freshDial).
func (h *punchingHost) RelayVia() []ma.Multiaddr {
	if h.relays == nil {
		return nil
	}
	return h.relays.Via()
}

func (h *punchingHost) Close() error {
	h.puncher.Close()
	return h.Host.Close()
}

func init() {
	// The access protocol opens the streams a user asks for, and has a
	// failing path checked, as the node's own commands do (dial.go,
	// pathwatch.go): access cannot call into transport, which imports it.
	access.Wire(newUserStream, suspectConn)
}

func init() {
	// A home node has a handful of peers, all trusted; libp2p's default of
	// four observers before it believes its own external address would
	// leave a node behind NAT with nothing to offer for hole punching.
	observedaddrs.ActivationThresh = 1
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
