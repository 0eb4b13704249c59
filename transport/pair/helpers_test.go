package pair_test

import (
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/fungi-go/fungi/transport"
)

// startHost starts a node's host (transporttest.Start) with a new gate
// and without port mapping: a test sends nothing off the machine.
func startHost(priv crypto.PrivKey, listen []string) (host.Host, *transport.TrustGate, error) {
	g := transport.NewTrustGate()
	h, err := transport.NewHost(priv, listen, g, nil, false)
	return h, g, err
}
