package transport

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
)

// RelayConfig is what a relay server serves, and to whom.
type RelayConfig struct {
	// Allow are the peers served; others are refused unless Open.
	Allow []peer.ID
	Open  bool
	// Limits of the relay; zero values take relay.DefaultResources'.
	MaxReservations int
	MaxCircuits     int
	ReservationTTL  time.Duration
	// CircuitDuration and CircuitBytes bound one relayed connection; the
	// defaults are generous, since fungi's own nodes move services' data
	// over it until a direct connection appears.
	CircuitDuration time.Duration
	CircuitBytes    int64
}

// relayACL serves the listed peers only, unless the relay is open.
type relayACL struct {
	open  bool
	allow map[peer.ID]bool
}

func (a *relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool { return a.open || a.allow[p] }
func (a *relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	return a.open || (a.allow[src] && a.allow[dest])
}

// NewRelay starts a circuit-relay v2 server with its own identity.
func NewRelay(priv crypto.PrivKey, listen []string, cfg RelayConfig) (host.Host, error) {
	rm, err := defaultResourceManager()
	if err != nil {
		return nil, fmt.Errorf("set up the relay's resource limits: %w", err)
	}
	// No relay client: it is one, and dials through none. It answers
	// AutoNAT, so its clients learn whether they are reachable.
	h, err := newNode(nodeConfig{priv: priv, listen: listen, rm: rm, natService: true})
	if err != nil {
		return nil, fmt.Errorf("start the relay on %v: %w", listen, err)
	}
	rc := relay.DefaultResources()
	if cfg.MaxReservations > 0 {
		rc.MaxReservations = cfg.MaxReservations
	}
	if cfg.MaxCircuits > 0 {
		rc.MaxCircuits = cfg.MaxCircuits
	}
	if cfg.ReservationTTL > 0 {
		rc.ReservationTTL = cfg.ReservationTTL
	}
	// libp2p's 2 KiB copy buffer held relayed transfers to ~36 MB/s in the
	// NAT benchmark; 64 KiB per direction per circuit costs little memory.
	rc.BufferSize = 64 << 10
	rc.Limit = &relay.RelayLimit{Duration: time.Hour, Data: 1 << 30}
	if cfg.CircuitDuration > 0 {
		rc.Limit.Duration = cfg.CircuitDuration
	}
	if cfg.CircuitBytes > 0 {
		rc.Limit.Data = cfg.CircuitBytes
	}
	acl := &relayACL{open: cfg.Open, allow: map[peer.ID]bool{}}
	for _, p := range cfg.Allow {
		acl.allow[p] = true
	}
	_, err = relay.New(h, relay.WithResources(rc), relay.WithACL(acl),
		// A relay on a LAN or a test network has private addresses, and
		// they are the ones its clients reach it on.
		relay.WithReservationAddressFilter(func(ma.Multiaddr) bool { return true }))
	if err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// Relays keeps this node's relay reservations and the relayed addresses
// they give it, which the host advertises next to its own.
type Relays struct {
	mu    sync.RWMutex
	addrs map[peer.ID][]ma.Multiaddr
	exp   map[peer.ID]time.Time
	errs  map[peer.ID]string
	// via holds the circuit addresses of every relay asked for a slot,
	// whether it gave one or not: reaching a peer through a relay needs
	// the peer's reservation there, not this node's.
	via map[peer.ID][]ma.Multiaddr
}

// NewRelays returns an empty set of reservations.
func NewRelays() *Relays {
	return &Relays{addrs: map[peer.ID][]ma.Multiaddr{}, exp: map[peer.ID]time.Time{}, errs: map[peer.ID]string{}, via: map[peer.ID][]ma.Multiaddr{}}
}

// Reserve asks relay for a slot and records the addresses it yields.
func (r *Relays) Reserve(ctx context.Context, h host.Host, relayInfo peer.AddrInfo) (time.Time, error) {
	circuit := ma.StringCast("/p2p/" + relayInfo.ID.String() + "/p2p-circuit")
	var addrs []ma.Multiaddr
	for _, a := range relayInfo.Addrs {
		addrs = append(addrs, a.Encapsulate(circuit))
	}
	r.mu.Lock()
	r.via[relayInfo.ID] = addrs
	r.mu.Unlock()
	res, err := client.Reserve(ctx, h, relayInfo)
	if err != nil {
		r.Drop(relayInfo.ID)
		r.mu.Lock()
		r.errs[relayInfo.ID] = err.Error()
		r.mu.Unlock()
		return time.Time{}, err
	}
	r.mu.Lock()
	r.addrs[relayInfo.ID] = addrs
	r.exp[relayInfo.ID] = res.Expiration
	delete(r.errs, relayInfo.ID)
	r.mu.Unlock()
	return res.Expiration, nil
}

// Drop forgets the reservation on a relay.
func (r *Relays) Drop(id peer.ID) {
	r.mu.Lock()
	delete(r.addrs, id)
	delete(r.exp, id)
	r.mu.Unlock()
}

// Addrs are the relayed addresses of every reservation held.
func (r *Relays) Addrs() []ma.Multiaddr {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return allAddrs(r.addrs)
}

// Via are the circuit addresses through every relay this node asked for a
// slot, with a reservation or still without one: a peer with a reservation
// on any of them is reached through it.
func (r *Relays) Via() []ma.Multiaddr {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return allAddrs(r.via)
}

// allAddrs is every address of every relay in byRelay, in one list.
func allAddrs(byRelay map[peer.ID][]ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, as := range byRelay {
		out = append(out, as...)
	}
	return out
}

// Reservation is the state of this node on one relay.
type Reservation struct {
	Expires time.Time // zero when there is none
	Error   string    // why the last attempt failed
}

// Reservations lists every relay tried, with its reservation or the reason
// there is none.
func (r *Relays) Reservations() map[peer.ID]Reservation {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[peer.ID]Reservation{}
	for id, t := range r.exp {
		out[id] = Reservation{Expires: t}
	}
	for id, e := range r.errs {
		out[id] = Reservation{Error: e}
	}
	return out
}

// ownRelayResources bound the relay a publicly reachable node runs for its
// own devices: a person has a handful, each with a slot and a few relayed
// connections at once.
func ownRelayResources() relay.Resources {
	rc := relay.DefaultResources()
	rc.MaxReservations = 32
	rc.MaxCircuits = 8
	rc.MaxReservationsPerIP = 8
	rc.MaxReservationsPerASN = 32
	rc.BufferSize = 64 << 10
	rc.Limit = &relay.RelayLimit{Duration: time.Hour, Data: 1 << 30}
	return rc
}

// trustedACL lets this node's trusted devices take a slot and connect to
// each other through it; strangers are refused.
type trustedACL struct{ gate *TrustGate }

func (a trustedACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool { return a.gate.Role(p) != "" }
func (a trustedACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	return a.gate.Role(src) != "" && a.gate.Role(dest) != ""
}

// RelayForTrusted makes h, while AutoNAT says it is publicly reachable, a
// circuit relay for the peers the gate trusts, and only for them: a home
// server with a public address is the relay of its owner's laptop and
// phone, which find it among their connected devices (Network.FindRelays).
// Behind NAT it serves nothing: a relay nobody can dial is of no use.
// stop ends it.
func RelayForTrusted(h host.Host, gate *TrustGate, logf func(string, ...any)) (stop func(), err error) {
	sub, err := h.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var r *relay.Relay
		defer func() {
			if r != nil {
				r.Close()
			}
		}()
		for e := range sub.Out() {
			public := e.(event.EvtLocalReachabilityChanged).Reachability == network.ReachabilityPublic
			switch {
			case public && r == nil:
				var err error
				r, err = relay.New(h, relay.WithResources(ownRelayResources()), relay.WithACL(trustedACL{gate}))
				if err != nil {
					logf("relaying for trusted devices not started: %v", err)
					r = nil
					continue
				}
				logf("publicly reachable: relaying for trusted devices")
			case !public && r != nil:
				r.Close()
				r = nil
				logf("not publicly reachable: no longer relaying for trusted devices")
			}
		}
	}()
	return func() { sub.Close(); <-done }, nil
}
