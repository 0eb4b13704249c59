// Package dialerr says in words why a peer could not be reached: libp2p's
// own errors ("all dials failed … dial backoff") name its internals, not
// what happened. The CLI's errors and the access port's 502 page both use
// it, so a user reads the same words in both places.
package dialerr

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
)

// Cause is what most likely happened on a failed dial.
type Cause int

const (
	// Unknown is a failure none of the others explains; Words quotes it.
	Unknown Cause = iota
	// Refused means nothing listens at the peer's address: its daemon is
	// not running there.
	Refused
	// NoRoute means this machine has no route to the peer's address.
	NoRoute
	// Timeout means the peer did not answer in time: offline, or a
	// firewall drops the packets.
	Timeout
	// Backoff means a dial failed moments ago and libp2p waits before the
	// next one.
	Backoff
	// NoAddress means no address is known for the peer.
	NoAddress
	// NotTrusted means the peer answered, then closed the connection right
	// after the handshake: its gate does not let this node in.
	NotTrusted
)

// Classify says what most likely happened. The text is checked as well as
// the error chain: libp2p joins the errors of each address into one text.
func Classify(err error) Cause {
	if err == nil {
		return Unknown
	}
	text := strings.ToLower(err.Error())
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(text, w) {
				return true
			}
		}
		return false
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED) || has("connection refused"):
		return Refused
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) || has("no route to host", "network is unreachable"):
		return NoRoute
	case has("dial backoff"):
		return Backoff
	case has("no addresses", "no good addresses"):
		return NoAddress
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || has("i/o timeout", "timeout", "deadline exceeded"):
		return Timeout
	case has("connection failed", "failed to negotiate security protocol", "failed to negotiate stream multiplexer", "connection reset by peer", "eof"):
		return NotTrusted
	}
	return Unknown
}

// Words is what happened, in a sentence fragment that follows "<peer> ".
func Words(err error) string {
	switch Classify(err) {
	case Refused:
		return "refused the connection: no fungi daemon listens at its address (is it running?)"
	case NoRoute:
		return "cannot be reached from here: no route to its address (another network, or offline)"
	case Timeout:
		return "did not answer in time: it is offline, or a firewall drops the packets"
	case Backoff:
		return "could not be reached moments ago, and is not dialed again for a few seconds; try again shortly"
	case NoAddress:
		return "has no known address: add one with `fungi device add PEER_ID --addr MULTIADDR`, or let it connect first"
	case NotTrusted:
		return "answered, then closed the connection right after the handshake: it does not trust this node (yet)"
	}
	return "could not be reached: " + err.Error()
}
