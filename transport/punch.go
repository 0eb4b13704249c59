package transport

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	manet "github.com/multiformats/go-multiaddr/net"

	ma "github.com/multiformats/go-multiaddr"
)

// punchDialTimeout bounds each direct dial of a hole punch: the plain dial
// DCUtR makes first and each of its synchronised punches. libp2p's 10 s
// default made one failed round last 40 s. The plain dial goes to the
// peer's observed address, and behind the commonest home router (filtering
// by address and port) it is dropped and runs into this timeout every time
// before the punch proper starts: the timeout is the time to direct there.
// A dial that can work needs a handshake only: QUIC one round trip, TCP
// about three (SYN, security, muxer) after libp2p's 250 ms head start for
// QUIC; at 300 ms RTT that is under 1.2 s, so 2 s still leaves room for
// jitter. A dial lost to a dropped packet (a TCP SYN is resent after 1 s)
// costs little: the synchronised punch that follows connects to a reachable
// peer as well, and a failed punch is tried again twice in the same round,
// then by the punch keeper. libp2p offers no way to skip or overlap the
// plain dial (it runs whenever the peer has a public address in the
// peerstore, and a NATed peer's observed address looks like any other).
const punchDialTimeout = 2 * time.Second

// Puncher is the node's hole-punching (DCUtR) service, held by the node
// instead of libp2p's host so that a relayed connection can be punched
// again later, not only when it opens, and so every attempt's outcome is
// recorded for `connection list`.
type Puncher struct {
	svc   *holepunch.Service
	addrs func() []ma.Multiaddr
	h     host.Host
	// stopPaths ends the watch on dead direct paths (pathwatch.go).
	stopPaths func()

	mu       sync.Mutex
	state    map[peer.ID]*PunchState
	observed map[string]observedAddr
	onAddr   []func()
}

// observedAddr is an address of this node as a peer saw it. libp2p's host
// lists observed addresses only after its next address update, seconds
// later; a punch needs them from the first relayed connection on.
type observedAddr struct {
	addr ma.Multiaddr
	seen time.Time
}

// Bounds of the observed addresses kept: a peer reports one per
// connection, and only recent ones describe this node's NAT.
const (
	maxObservedAddrs = 16
	observedAddrTTL  = 30 * time.Minute
)

// observe keeps a, and tells the listeners of OnNewAddr when a is new: a
// punch that failed for want of this node's address may work now.
func (p *Puncher) observe(a ma.Multiaddr) {
	if isRelayed(a) || !manet.IsPublicAddr(a) {
		return
	}
	p.mu.Lock()
	_, known := p.observed[a.String()]
	p.keep(a)
	listeners := p.onAddr
	p.mu.Unlock()
	if !known {
		for _, f := range listeners {
			f()
		}
	}
}

func (p *Puncher) keep(a ma.Multiaddr) {
	if _, ok := p.observed[a.String()]; !ok && len(p.observed) >= maxObservedAddrs {
		var oldest string
		for k, o := range p.observed {
			if oldest == "" || o.seen.Before(p.observed[oldest].seen) {
				oldest = k
			}
		}
		delete(p.observed, oldest)
	}
	p.observed[a.String()] = observedAddr{addr: a, seen: time.Now()}
}

func (p *Puncher) observedAddrs() []ma.Multiaddr {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ma.Multiaddr
	for k, o := range p.observed {
		if time.Since(o.seen) > observedAddrTTL {
			delete(p.observed, k)
			continue
		}
		out = append(out, o.addr)
	}
	return out
}

// PunchState is what is known of hole punching to one peer.
type PunchState struct {
	LastTry time.Time
	Error   string // why the last attempt failed; "" after a success
	NextTry time.Time
}

// maxPunchPeers bounds the recorded state; only peers with a connection
// are punched, and a fungi node has a handful.
const maxPunchPeers = 1024

// OnNewAddr calls f (on the caller of observe) whenever a peer tells this
// node a public address of its own it did not know.
func (p *Puncher) OnNewAddr(f func()) {
	p.mu.Lock()
	p.onAddr = append(p.onAddr, f)
	p.mu.Unlock()
}

// startPuncher runs hole punching on h, as libp2p.EnableHolePunching would.
func startPuncher(h host.Host) (*Puncher, error) {
	idh, ok := h.(interface{ IDService() identify.IDService })
	if !ok {
		return nil, errors.New("the host has no identify service to punch holes with")
	}
	p := &Puncher{h: h, state: map[peer.ID]*PunchState{}, observed: map[string]observedAddr{}}
	// Subscribed before the service starts, so its protocol handler
	// appearing (it is ready to punch) is seen.
	sub, err := h.EventBus().Subscribe([]any{new(event.EvtPeerIdentificationCompleted),
		new(event.EvtLocalProtocolsUpdated), new(event.EvtPeerProtocolsUpdated)})
	if err != nil {
		return nil, err
	}
	go func() {
		for e := range sub.Out() {
			switch e := e.(type) {
			case event.EvtPeerIdentificationCompleted:
				if e.ObservedAddr != nil {
					p.observe(e.ObservedAddr)
				}
			case event.EvtLocalProtocolsUpdated:
				if slices.Contains(e.Added, holepunch.Protocol) {
					p.catchUp(h, idh.IDService(), "")
				}
			case event.EvtPeerProtocolsUpdated:
				// The peer that opened the connection before it knew its
				// own public address had no handler for a punch then, and
				// the punch libp2p made failed; its identify push says it
				// has one now.
				if slices.Contains(e.Added, holepunch.Protocol) && len(p.addrs()) > 0 {
					p.catchUp(h, idh.IDService(), e.Peer)
				}
			}
		}
	}()
	p.addrs = func() []ma.Multiaddr { return ma.Unique(append(punchAddrs(h), p.observedAddrs()...)) }
	svc, err := holepunch.NewService(h, idh.IDService(), p.addrs,
		holepunch.WithTracer(p), holepunch.DirectDialTimeout(punchDialTimeout))
	if err != nil {
		return nil, err
	}
	p.svc = svc
	// A dead direct connection closed, the relayed one left is punched
	// again at once from the side that may (the one the relayed
	// connection came in to); the peer on the other side punches as its
	// own punch keeper retries, and meets closeStaleDirect here.
	p.stopPaths = watchPaths(h, func(id peer.ID) { p.catchUp(h, idh.IDService(), id) })
	return p, nil
}

// punchAddrs are the host's public direct addresses, observed ones
// included: what the other side of a punch dials. Addrs leaves out those
// AutoNAT found unreachable from outside, which behind a NAT is all of
// them: AllAddrs keeps them, as libp2p's own hole punching does.
func punchAddrs(h host.Host) []ma.Multiaddr {
	all := h.Addrs()
	if ah, ok := h.(interface{ AllAddrs() []ma.Multiaddr }); ok {
		all = ah.AllAddrs()
	}
	var out []ma.Multiaddr
	for _, a := range all {
		if !isRelayed(a) && manet.IsPublicAddr(a) {
			out = append(out, a)
		}
	}
	return out
}

// Trace records the outcome of each step libp2p reports, for the punches
// it starts on its own and for ours.
func (p *Puncher) Trace(evt *holepunch.Event) {
	var errText string
	switch e := evt.Evt.(type) {
	case *holepunch.StartHolePunchEvt:
		// Synchronous with the punch: the dial that follows must not find
		// a dead direct connection and call it done.
		closeStaleDirect(p.h, evt.Remote)
		return
	case *holepunch.DirectDialEvt:
		if e.Success {
			p.record(evt.Remote, "")
			return
		}
		errText = "direct dial: " + e.Error
	case *holepunch.ProtocolErrorEvt:
		errText = "hole punch protocol: " + e.Error
	case *holepunch.EndHolePunchEvt:
		if e.Success {
			p.record(evt.Remote, "")
			return
		}
		errText = "hole punch: " + e.Error
	default:
		return
	}
	p.record(evt.Remote, errText)
}

func (p *Puncher) record(id peer.ID, errText string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.state[id]
	if s == nil {
		if len(p.state) >= maxPunchPeers {
			return
		}
		s = &PunchState{}
		p.state[id] = s
	}
	s.LastTry = time.Now().UTC()
	s.Error = errText
}

// SetNextTry records when the next attempt on id is due.
func (p *Puncher) SetNextTry(id peer.ID, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.state[id]; s != nil {
		s.NextTry = at
	} else if len(p.state) < maxPunchPeers {
		p.state[id] = &PunchState{NextTry: at}
	}
}

// Forget drops the state of a peer that is gone or direct.
func (p *Puncher) Forget(id peer.ID) {
	p.mu.Lock()
	delete(p.state, id)
	p.mu.Unlock()
}

// State is what is known of punching to id.
func (p *Puncher) State(id peer.ID) (PunchState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.state[id]
	if !ok {
		return PunchState{}, false
	}
	return *s, true
}

// catchUpWait bounds the wait for identify on a connection before the
// catch-up punch of it, as libp2p's punch on a new connection waits.
const catchUpWait = 30 * time.Second

// catchUp punches the relayed connections (to only, if set) that
// libp2p's service missed: it punches a connection as it opens, but only
// from the moment it knows a public address of this node (when it adds its
// protocol handler), and only if the other side has one too; a connection
// that opened before would wait for the punch keeper's retry. One opened
// just now may be punched by both; the second finds the first under way
// and leaves it alone.
func (p *Puncher) catchUp(h host.Host, ids identify.IDService, only peer.ID) {
	for _, c := range relayedInbound(h) {
		if only != "" && c.RemotePeer() != only {
			continue
		}
		go func() {
			select {
			case <-ids.IdentifyWait(c):
			case <-time.After(catchUpWait):
			}
			_ = p.svc.DirectConnect(c.RemotePeer()) // the tracer records the outcome
		}()
	}
}

// relayedInbound is one connection for each peer whose every connection is
// relayed and was opened by the peer (the side libp2p punches from).
func relayedInbound(h host.Host) []network.Conn {
	var out []network.Conn
	for _, id := range h.Network().Peers() {
		conns := h.Network().ConnsToPeer(id)
		var in network.Conn
		relayed := len(conns) > 0
		for _, c := range conns {
			if !relayedConn(c) {
				relayed = false
				break
			}
			if c.Stat().Direction == network.DirInbound {
				in = c
			}
		}
		if relayed && in != nil {
			out = append(out, in)
		}
	}
	return out
}

// Punch tries once to turn the relayed connection to id direct. It
// returns at once when this node knows no public address of its own
// (nobody has told it one yet): libp2p would wait for one forever.
func (p *Puncher) Punch(id peer.ID) error {
	if len(p.addrs()) == 0 {
		p.record(id, ErrNoPublicAddr.Error())
		return ErrNoPublicAddr
	}
	err := p.svc.DirectConnect(id)
	if errors.Is(err, holepunch.ErrHolePunchActive) {
		// libp2p's own punch (as the connection opened) is under way; its
		// outcome, recorded by Trace, is not this try's.
		return ErrPunchInProgress
	}
	if err != nil {
		p.record(id, err.Error())
	}
	return err
}

// ErrNoPublicAddr is a punch not tried: nobody has told this node a public
// address of its own yet (identify with a relay or a peer does).
var ErrNoPublicAddr = errors.New("this node knows no public address of its own yet, so there is nothing to punch with")

// ErrPunchInProgress is a punch not tried because another one to the same
// peer (libp2p's own, as the connection opened) is still running: neither
// a success nor a failure.
var ErrPunchInProgress = errors.New("another hole punch to this peer is under way")

// Close stops the service.
func (p *Puncher) Close() error {
	p.stopPaths()
	return p.svc.Close()
}

// RelayedOnly lists the peers whose every connection is relayed and was
// opened by them (the side libp2p punches from).
func (n *Network) RelayedOnly() []peer.ID {
	var out []peer.ID
	for _, c := range relayedInbound(n.Host) {
		out = append(out, c.RemotePeer())
	}
	return out
}

// puncher is the host's hole puncher; nil on a host NewHost did not make.
func (n *Network) puncher() *Puncher {
	if h, ok := n.Host.(*punchingHost); ok {
		return h.puncher
	}
	return nil
}

// HolePunch tries once to turn the relayed connection to p direct.
func (n *Network) HolePunch(ctx context.Context, p peer.ID) error {
	puncher := n.puncher()
	if puncher == nil {
		return errors.New("hole punching is off on this node")
	}
	done := make(chan error, 1)
	go func() { done <- puncher.Punch(p) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("the hole punch did not end in time: %w", ctx.Err())
	}
}

// SetPunchNext records when the next punch on p is due, for connection list.
func (n *Network) SetPunchNext(p peer.ID, at time.Time) {
	if pu := n.puncher(); pu != nil {
		pu.SetNextTry(p, at)
	}
}

// ForgetPunch drops what is known of punching to p.
func (n *Network) ForgetPunch(p peer.ID) {
	if pu := n.puncher(); pu != nil {
		pu.Forget(p)
	}
}

// OnAddrsChanged calls f (on a goroutine of its own) whenever the host's
// own addresses change: a new network, a new observed address, a
// reservation taken or lost.
func (n *Network) OnAddrsChanged(f func()) error {
	sub, err := n.Host.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		return err
	}
	go func() {
		for range sub.Out() {
			f()
		}
	}()
	return nil
}

// OnPublicAddrLearned calls f (on a goroutine of its own) whenever a peer
// tells this node a public address of its own it did not know: at once,
// where the host lists it only at its next address update, seconds later.
// Not an address change for roaming, which follows OnAddrsChanged.
func (n *Network) OnPublicAddrLearned(f func()) error {
	pu := n.puncher()
	if pu == nil {
		return errors.New("hole punching is off on this node")
	}
	pu.OnNewAddr(func() { go f() })
	return nil
}
