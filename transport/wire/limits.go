package wire

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
)

// Stream limits of a fungi node. libp2p's defaults are made for strangers
// on a public network and cap one peer at about 75 streams per protocol;
// a fungi node only talks to its owner's devices, where one access entry
// may carry a thousand connections at once. transport's resource manager
// sets them; a refusal by them names them (StreamOpenError, ExplainReset).
const (
	// TrustedPeerStreams is how many streams an admitted peer may have open
	// with this node at once in each direction.
	TrustedPeerStreams = 4096
	// NodeStreams is how many streams the node holds in all.
	NodeStreams = 16384
)

// ErrStreamLimit marks a stream that a resource limit refused, on this node
// or on the peer: wait for connections to end, or spread the load.
var ErrStreamLimit = errors.New("stream limit reached")

// RemoteError is an error reply from a peer.
type RemoteError struct {
	Code    string
	Message string
}

func (e *RemoteError) Error() string { return e.Message }

// IsLimitReset reports whether err is a stream the other side reset
// because one of its resource limits was reached.
func IsLimitReset(err error) bool {
	var se *network.StreamError
	return errors.As(err, &se) && se.ErrorCode == network.StreamResourceLimitExceeded
}

// StreamOpenError explains a failed NewStream.
func StreamOpenError(err error) error {
	if errors.Is(err, network.ErrResourceLimitExceeded) {
		return fmt.Errorf("%w: this node already has as many streams open as it allows (%d per peer, %d in all); wait for some connections to end: %v",
			ErrStreamLimit, TrustedPeerStreams, NodeStreams, err)
	}
	return ExplainReset(err)
}

// ExplainReset turns the peer's refusal of a stream into words; libp2p's
// own says only "stream reset".
func ExplainReset(err error) error {
	if IsLimitReset(err) {
		return fmt.Errorf("%w: the peer refused the stream, it has as many open as it allows (%d per peer on a fungi node); wait for some connections to end: %v",
			ErrStreamLimit, TrustedPeerStreams, err)
	}
	if errors.Is(err, network.ErrReset) {
		return fmt.Errorf("the peer closed the stream before answering (it may be stopping, or have untrusted this node): %w", err)
	}
	return err
}
