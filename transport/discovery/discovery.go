// Package discovery finds a node's devices wherever they are now, through
// the libp2p Kademlia DHT (the one IPFS and most libp2p programs share, or
// a private one made of the nodes a deployment names as bootstrap peers).
//
// A node publishes only what libp2p's identify protocol tells every peer it
// connects to: its peer ID and its addresses. The DHT nodes it meets keep
// them and hand them to anyone who asks for that peer ID; nothing else (no
// service names, no device names, no records of its own) is stored in the
// DHT. A home node is a DHT client: it asks, it answers nobody (Kubo's
// "autoclient"). `fungi relay serve`, the infrastructure node, is a DHT
// server: it answers other nodes' queries, within a bounded record store.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Config says how a node takes part in the DHT.
type Config struct {
	// Server answers other nodes' queries and keeps their records; off,
	// the node is a client that only asks.
	Server bool
	// Bootstrap are the DHT nodes contacted first; with none the node
	// talks to no DHT node it does not meet otherwise.
	Bootstrap []peer.AddrInfo
}

// DHT is a node's part in the Kademlia DHT: it finds peers by their ID,
// and tells the DHT nodes nearest its own ID where it is whenever its
// addresses change. That second part is the DHT's own: on each
// EvtLocalAddressesUpdated (a restart on another port, a new network, a
// new relayed address) it looks up its own ID, which connects it to the
// nearest DHT nodes, and identify hands them the new addresses; peers
// already connected hear them from identify's push. A client-mode node has
// no peer record of its own in the DHT: its nearest DHT nodes are where
// others' lookups of its ID end, and they answer with the addresses of
// the connection it holds to them.
type DHT struct {
	kad       *dht.IpfsDHT
	host      host.Host
	bootstrap []peer.AddrInfo
	store     *boundedStore

	once     sync.Once
	closeErr error
}

// findTimeout bounds one lookup even when the caller's context does not.
const findTimeout = 15 * time.Second

// Start joins the DHT on h, in client mode unless cfg.Server. The bootstrap
// peers are dialed in the background; Start does not wait for them.
func Start(h host.Host, cfg Config) (*DHT, error) {
	mode := dht.ModeClient
	if cfg.Server {
		mode = dht.ModeServer
	}
	store := newBoundedStore(maxStoreRecords, maxStoreBytes)
	kad, err := dht.New(h,
		dht.Mode(mode),
		dht.BootstrapPeers(cfg.Bootstrap...),
		dht.Datastore(store),
	)
	if err != nil {
		return nil, fmt.Errorf("start the DHT: %w", err)
	}
	return &DHT{kad: kad, host: h, bootstrap: slices.Clone(cfg.Bootstrap), store: store}, nil
}

// tableWait bounds how long a lookup waits for a first DHT server.
const tableWait = 5 * time.Second

// awaitTable waits, within ctx and tableWait, until the routing table
// holds a DHT server, dialing the bootstrap peers again meanwhile. A
// lookup right after start (a session's first dial, a user's first
// command) would otherwise fail at once: the bootstrap peers enter the
// table only once identify has said they serve the DHT.
func (d *DHT) awaitTable(ctx context.Context) {
	if d.kad.RoutingTable().Size() > 0 || len(d.bootstrap) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, tableWait)
	defer cancel()
	for _, b := range d.bootstrap {
		// The swarm joins these to the DHT's own dials of the same peers;
		// each ends with ctx.
		go d.host.Connect(ctx, b)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for d.kad.RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// FindPeer asks the DHT where p is now. The lookup ends at the DHT nodes
// nearest p's ID, and dials p on what they answer; a found peer is
// therefore one this node could reach a moment ago.
func (d *DHT) FindPeer(ctx context.Context, p peer.ID) (peer.AddrInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, findTimeout)
	defer cancel()
	d.awaitTable(ctx)
	ai, err := d.kad.FindPeer(ctx, p)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("find %s through the DHT: %w", p, err)
	}
	return ai, nil
}

// BootstrapPeers are the DHT nodes this node was told to start from; the
// node's trust gate lets them through as it does its relays.
func (d *DHT) BootstrapPeers() []peer.ID {
	ids := make([]peer.ID, len(d.bootstrap))
	for i, b := range d.bootstrap {
		ids[i] = b.ID
	}
	return ids
}

// RoutingTableSize is how many DHT servers this node knows now.
func (d *DHT) RoutingTableSize() int { return d.kad.RoutingTable().Size() }

// Close leaves the DHT. The host stays up.
func (d *DHT) Close() error {
	d.once.Do(func() { d.closeErr = errors.Join(d.kad.Close(), d.store.Close()) })
	return d.closeErr
}
