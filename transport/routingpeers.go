package transport

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// Routing peers are strangers this node dials itself for its own lookups:
// the DHT servers a query walks to, and relays found through the DHT. The
// gate lets such a connection through when this node opened it (never one
// a stranger opens), and a peer so admitted is one of a bounded number,
// with small limits of its own (routingLimits). Fungi's own protocols
// still refuse it: they check the peer's role, which it has none of.

// maxRoutingPeers bounds how many strangers this node holds connections to
// for routing at once; a DHT lookup walks a few dozen.
const maxRoutingPeers = 128

// routingPeerTTL is how long one outbound routing connection keeps its
// place (and its limits): a DHT query ends in seconds, but a relay found
// through the DHT holds this node's slot on one connection for as long as
// the reservation lasts (an hour by libp2p's default, renewed halfway).
const routingPeerTTL = time.Hour

// routingLimits are a routing peer's resource limits: the kad, identify
// and ping streams of a lookup, and the relay's stop streams (one per
// relayed connection) when it is a relay this node holds a slot on.
var routingLimits = rcmgr.BaseLimit{
	Conns: 2, ConnsInbound: 1, ConnsOutbound: 2, FD: 2,
	Streams: 48, StreamsInbound: 32, StreamsOutbound: 16,
	Memory: 16 << 20,
}

// routingPeers are the strangers admitted for routing, each until its
// place expires.
type routingPeers struct {
	mu    sync.Mutex
	until map[peer.ID]time.Time
}

func newRoutingPeers() *routingPeers { return &routingPeers{until: map[peer.ID]time.Time{}} }

// admit gives p a place for routingPeerTTL, or reports false when every
// place is held.
func (r *routingPeers) admit(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if _, ok := r.until[p]; !ok && len(r.until) >= maxRoutingPeers {
		for q, t := range r.until {
			if now.After(t) {
				delete(r.until, q)
			}
		}
		if len(r.until) >= maxRoutingPeers {
			return false
		}
	}
	r.until[p] = now.Add(routingPeerTTL)
	return true
}

// has reports whether p holds a place now.
func (r *routingPeers) has(p peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.until[p]
	return ok && time.Now().Before(t)
}
