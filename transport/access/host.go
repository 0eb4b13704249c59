package access

import (
	"context"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// What access needs of the node's host beyond host.Host. transport, which
// imports access, provides both (Wire); until it does, a stream opens
// with a plain NewStream and no connection is suspected.
var (
	newUserStream = func(ctx context.Context, h host.Host, p peer.ID, reason string, protos ...protocol.ID) (network.Stream, error) {
		return h.NewStream(network.WithAllowLimitedConn(ctx, reason), p, protos...)
	}
	suspectConn = func(network.Conn) {}
)

// Wire sets how access opens a stream the user asked for now (open: a
// dial backoff an earlier dial left must not refuse it) and has the path
// of a connection on which a stream failed checked (suspect). transport
// calls it once, as it is initialised, before any host starts.
func Wire(open func(ctx context.Context, h host.Host, p peer.ID, reason string, protos ...protocol.ID) (network.Stream, error), suspect func(network.Conn)) {
	newUserStream, suspectConn = open, suspect
}
