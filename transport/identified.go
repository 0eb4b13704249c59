package transport

import (
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// OnIdentified calls f (from one goroutine, in order) with the addresses a
// peer says it listens on, each time identify completes on a connection to
// it: the device book keeps them for a trusted peer, so that a node that
// restarts can dial back a device that only ever dialed it. stop ends the
// calls.
func (n *Network) OnIdentified(f func(peer.ID, []ma.Multiaddr)) (stop func(), err error) {
	sub, err := n.Host.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return nil, err
	}
	go func() {
		for e := range sub.Out() {
			done := e.(event.EvtPeerIdentificationCompleted)
			f(done.Peer, done.ListenAddrs)
		}
	}()
	return func() { sub.Close() }, nil
}

// ForgetAddrs removes addrs of p from the peerstore: the device book
// dropped them, as dials on them kept failing.
func (n *Network) ForgetAddrs(p peer.ID, addrs []ma.Multiaddr) {
	if len(addrs) > 0 {
		n.Host.Peerstore().SetAddrs(p, addrs, 0)
	}
}
