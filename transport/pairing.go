package transport

import (
	"errors"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Bounds of punchJoined's wait for libp2p's own punch to end: it ends
// within a few round trips, since this node's half of it is refused.
const (
	joinedPunchTries = 20
	joinedPunchWait  = 250 * time.Millisecond
)

// punchJoined turns a joiner's relayed connection direct as soon as the
// joiner is trusted. libp2p punches a relayed connection as it opens, but
// then the joiner was a guest, whom this node's gate does not dial, so that
// punch fails, and the punch keeper's next try would come only seconds
// later. This one waits for libp2p's to end, then punches once.
func punchJoined(h host.Host, joiner peer.ID) {
	ph, ok := h.(*punchingHost)
	if !ok {
		return
	}
	for range joinedPunchTries {
		if !slices.ContainsFunc(relayedInbound(h), func(c network.Conn) bool { return c.RemotePeer() == joiner }) {
			return // direct already, or gone
		}
		if err := ph.puncher.Punch(joiner); !errors.Is(err, ErrPunchInProgress) {
			return // its outcome is recorded for connection list (Trace)
		}
		time.Sleep(joinedPunchWait)
	}
}
