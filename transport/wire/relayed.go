package wire

import (
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// RelayedAddr reports whether a is a circuit address: it goes through a
// relay.
func RelayedAddr(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// Relayed reports whether c goes through a relay: libp2p marks a circuit
// with limits Limited, and its remote address names the circuit.
func Relayed(c network.Conn) bool {
	return c.Stat().Limited || RelayedAddr(c.RemoteMultiaddr())
}
