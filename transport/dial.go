package transport

import (
	"context"
	"errors"
	"strings"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
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
// uses, as its session does: a command right after `device add` must not
// find the peer without addresses, even while this node's own reservation
// is still being taken.
func freshDial(h host.Host, p peer.ID) {
	if h.Network().Connectedness(p) == network.Connected {
		return
	}
	if via := relayVia(h); len(via) > 0 {
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

// relayVia are the circuit addresses through the relays h uses: every
// relay it asked for a slot (Relays.Via) when h is a node's host, else
// those of its own reservations among its addresses.
func relayVia(h host.Host) []ma.Multiaddr {
	if r, ok := h.(interface{ RelayVia() []ma.Multiaddr }); ok {
		return r.RelayVia()
	}
	var via []ma.Multiaddr
	for _, a := range h.Addrs() {
		if relayOf(a) != "" {
			via = append(via, a)
		}
	}
	return via
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

// newUserStream opens a stream the user asked for now (a command, an access
// connection). freshDial clears libp2p's dial backoff first, but a dial of
// p that began before (a session's reconnect, a reservation retry) still
// carries the backoff it met, and libp2p joins our dial to it: its "dial
// backoff" is then about the past, so the stream is tried once more on a
// dial of its own.
func newUserStream(ctx context.Context, h host.Host, p peer.ID, reason string, protos ...protocol.ID) (network.Stream, error) {
	freshDial(h, p)
	ctx = network.WithAllowLimitedConn(ctx, reason)
	s, err := h.NewStream(ctx, p, protos...)
	if err == nil || !joinedStaleDial(err) || ctx.Err() != nil {
		return s, err
	}
	freshDial(h, p)
	return h.NewStream(ctx, p, protos...)
}

// ConnectNow connects to p for something the user asked for now (the peer
// a command is for, the node an invite names), as Connect does; but, as
// for a user's stream, the dial backoff a background dial left on p or on
// its relays (a session's first dial right after `device add`, a
// reservation retry) is cleared first, and a dial that joined one begun in
// backoff is tried once more on a dial of its own. The session's own
// redials keep using Connect: they respect the backoff.
func (n *Network) ConnectNow(ctx context.Context, p peer.ID) error {
	freshDial(n.Host, p)
	err := n.Connect(ctx, p)
	if err == nil || !joinedStaleDial(err) || ctx.Err() != nil {
		return err
	}
	freshDial(n.Host, p)
	return n.Connect(ctx, p)
}

// joinedStaleDial reports whether err may be about the past rather than
// now: libp2p joins a new dial of p to one already under way, whose
// attempts may have been made before p was back: refused by the dial
// backoff, or by a relay with no reservation for p then (p reserved while
// the dial's direct attempts were still timing out; seen after a relay
// restart). Such an error is worth one dial of our own.
func joinedStaleDial(err error) bool {
	return inDialBackoff(err) || strings.Contains(err.Error(), "NO_RESERVATION")
}

// inDialBackoff reports whether err is a dial refused by libp2p's dial
// backoff, on the peer's own address or on a relay's. A relayed dial's
// error names the relay's as text, so the text is checked too.
func inDialBackoff(err error) bool {
	return errors.Is(err, swarm.ErrDialBackoff) || strings.Contains(err.Error(), swarm.ErrDialBackoff.Error())
}
