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
)

// newUserStream opens a stream the user asked for now (a command, an access
// connection). freshDial clears libp2p's dial backoff first, but a dial of
// p that began before (a session's reconnect, a reservation retry) still
// carries the backoff it met, and libp2p joins our dial to it: its "dial
// backoff" is then about the past, so the stream is tried once more on a
// dial of its own.
func newUserStream(ctx context.Context, h host.Host, p peer.ID, proto protocol.ID, reason string) (network.Stream, error) {
	freshDial(h, p)
	ctx = network.WithAllowLimitedConn(ctx, reason)
	s, err := h.NewStream(ctx, p, proto)
	if err == nil || !inDialBackoff(err) || ctx.Err() != nil {
		return s, err
	}
	freshDial(h, p)
	return h.NewStream(ctx, p, proto)
}

// inDialBackoff reports whether err is a dial refused by libp2p's dial
// backoff, on the peer's own address or on a relay's. A relayed dial's
// error names the relay's as text, so the text is checked too.
func inDialBackoff(err error) bool {
	return errors.Is(err, swarm.ErrDialBackoff) || strings.Contains(err.Error(), swarm.ErrDialBackoff.Error())
}
