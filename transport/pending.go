package transport

import (
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// MaxPendingPeers bounds the pending list: a stranger who cycles through
// peer IDs fills it, and the oldest entries make room.
const MaxPendingPeers = 64

// PendingPeer is a stranger the gate refused at the handshake, as
// Syncthing lists devices that want to connect.
type PendingPeer struct {
	ID        peer.ID
	Addr      string // the address of its latest attempt
	FirstSeen time.Time
	LastSeen  time.Time
	Attempts  int64
}

// pendingPeers is the bounded record of refused strangers.
type pendingPeers struct {
	mu    sync.Mutex
	peers map[peer.ID]*PendingPeer
}

func newPendingPeers() *pendingPeers { return &pendingPeers{peers: map[peer.ID]*PendingPeer{}} }

func (pp *pendingPeers) record(p peer.ID, addr ma.Multiaddr) {
	now := time.Now().UTC()
	pp.mu.Lock()
	defer pp.mu.Unlock()
	e, ok := pp.peers[p]
	if !ok {
		if len(pp.peers) >= MaxPendingPeers {
			pp.dropOldest()
		}
		e = &PendingPeer{ID: p, FirstSeen: now}
		pp.peers[p] = e
	}
	e.LastSeen = now
	e.Attempts++
	if addr != nil {
		e.Addr = addr.String()
	}
}

// dropOldest removes the entry seen least recently; the caller holds mu.
func (pp *pendingPeers) dropOldest() {
	var oldest *PendingPeer
	for _, e := range pp.peers {
		if oldest == nil || e.LastSeen.Before(oldest.LastSeen) {
			oldest = e
		}
	}
	if oldest != nil {
		delete(pp.peers, oldest.ID)
	}
}

func (pp *pendingPeers) forget(p peer.ID) bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	_, ok := pp.peers[p]
	delete(pp.peers, p)
	return ok
}

func (pp *pendingPeers) list() []PendingPeer {
	pp.mu.Lock()
	out := make([]PendingPeer, 0, len(pp.peers))
	for _, e := range pp.peers {
		out = append(out, *e)
	}
	pp.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	return out
}
