package actors

import "sync/atomic"

// AccessObserver, when set, is told when a connection to an access entry's
// local port opens (delta 1) and when its bridge ends (delta -1), with the
// entry's peer and service IDs. The dashboard's /metrics sets it; it must
// return at once.
var AccessObserver atomic.Pointer[func(peerID, serviceID string, delta int)]

// AccessBytesObserver, when set, is told of the bytes each access
// connection moves: sent towards the peer's service, or received from it.
// It is called on the copying goroutines and must return at once.
var AccessBytesObserver atomic.Pointer[func(peerID, serviceID string, sent bool, n int)]

// accessBytesCounter is the count callback of one bridge, nil when nobody
// observes.
func accessBytesCounter(peerID, serviceID string) func(sent bool, n int) {
	obs := AccessBytesObserver.Load()
	if obs == nil {
		return nil
	}
	return func(sent bool, n int) { (*obs)(peerID, serviceID, sent, n) }
}

// observeAccess reports a bridge opening and returns what reports its end.
func observeAccess(peerID, serviceID string) func() {
	obs := AccessObserver.Load()
	if obs == nil {
		return func() {}
	}
	(*obs)(peerID, serviceID, 1)
	return func() { (*obs)(peerID, serviceID, -1) }
}
