package transport

import (
	"context"
	"errors"
	"fmt"
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

// punchDialTimeout bounds each direct dial of a hole punch; libp2p's 10 s
// default made one failed round (a dial and three punches) last 40 s.
const punchDialTimeout = 5 * time.Second

// Puncher is the node's hole-punching (DCUtR) service, held by the node
// instead of libp2p's host so that a relayed connection can be punched
// again later, not only when it opens, and so every attempt's outcome is
// recorded for `connection list`.
type Puncher struct {
	svc   *holepunch.Service
	addrs func() []ma.Multiaddr

	mu       sync.Mutex
	state    map[peer.ID]*PunchState
	observed map[string]observedAddr
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

func (p *Puncher) observe(a ma.Multiaddr) {
	if isRelayed(a) || !manet.IsPublicAddr(a) {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
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

// startPuncher runs hole punching on h, as libp2p.EnableHolePunching would.
func startPuncher(h host.Host) (*Puncher, error) {
	idh, ok := h.(interface{ IDService() identify.IDService })
	if !ok {
		return nil, errors.New("the host has no identify service to punch holes with")
	}
	p := &Puncher{state: map[peer.ID]*PunchState{}, observed: map[string]observedAddr{}}
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return nil, err
	}
	go func() {
		for e := range sub.Out() {
			if a := e.(event.EvtPeerIdentificationCompleted).ObservedAddr; a != nil {
				p.observe(a)
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
		return nil // libp2p's own punch on a new connection is under way
	}
	if err != nil {
		p.record(id, err.Error())
	}
	return err
}

// ErrNoPublicAddr is a punch not tried: nobody has told this node a public
// address of its own yet (identify with a relay or a peer does).
var ErrNoPublicAddr = errors.New("this node knows no public address of its own yet, so there is nothing to punch with")

// Close stops the service.
func (p *Puncher) Close() error { return p.svc.Close() }

// RelayedOnly lists the peers whose every connection is relayed and was
// opened by them (the side libp2p punches from).
func (n *Network) RelayedOnly() []peer.ID {
	var out []peer.ID
	for _, id := range n.Host.Network().Peers() {
		conns := n.Host.Network().ConnsToPeer(id)
		relayed, inbound := len(conns) > 0, false
		for _, c := range conns {
			if !(c.Stat().Limited || isRelayed(c.RemoteMultiaddr())) {
				relayed = false
				break
			}
			if c.Stat().Direction == network.DirInbound {
				inbound = true
			}
		}
		if relayed && inbound {
			out = append(out, id)
		}
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
