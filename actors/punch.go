package actors

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/transport"
)

// HolePuncher is what the punch keeper needs of the network. A
// PeerNetwork that has it gets relayed connections punched again.
type HolePuncher interface {
	// RelayedOnly lists peers whose every connection is relayed and was
	// opened by them (the side that punches).
	RelayedOnly() []peer.ID
	// HolePunch tries once to turn the relayed connection to p direct.
	HolePunch(ctx context.Context, p peer.ID) error
	// SetPunchNext and ForgetPunch keep connection list's view current.
	SetPunchNext(p peer.ID, at time.Time)
	ForgetPunch(p peer.ID)
	// OnAddrsChanged calls f whenever this node's own addresses change.
	OnAddrsChanged(f func()) error
	// OnPublicAddrLearned calls f whenever a peer tells this node a public
	// address of its own it did not know.
	OnPublicAddrLearned(f func()) error
}

// Backoff of punch retries: libp2p punches once when a relayed connection
// opens; a NAT that said no then may say yes later (a router restarted, a
// port opened, the other side moved), so a connection still relayed is
// punched again: firstTry after it is seen, then firstBackoff after each
// failure, doubling to maxBackoff, and at once (at most every addrRetry)
// after this node's addresses change or it learns a public address.
type punchTiming struct {
	firstTry     time.Duration
	firstBackoff time.Duration
	maxBackoff   time.Duration
	addrRetry    time.Duration
	checkEvery   time.Duration
	timeout      time.Duration
}

var defaultPunchTiming = punchTiming{
	firstTry:     5 * time.Second,
	firstBackoff: 30 * time.Second,
	maxBackoff:   10 * time.Minute,
	addrRetry:    10 * time.Second,
	checkEvery:   5 * time.Second,
	timeout:      2 * time.Minute,
}

// punchKeeper retries hole punching on every connection that is still
// relayed. The attempts run off the mailbox and report back.
type punchKeeper struct {
	net   HolePuncher
	t     punchTiming
	peers map[peer.ID]*punchPeer
}

type punchPeer struct {
	backoff time.Duration // wait after the next failure
	next    time.Time
	tried   time.Time // start of the last try that ran; zero before one
	busy    bool
}

type punchTick struct{}

type punchDone struct {
	id      peer.ID
	err     error
	started time.Time
}

type addrsChanged struct{}

func punchKeeperProps(n HolePuncher) *actor.Props {
	return punchKeeperPropsTimed(n, defaultPunchTiming)
}

func punchKeeperPropsTimed(n HolePuncher, t punchTiming) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &punchKeeper{net: n, t: t} })
}

func (k *punchKeeper) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		k.start(ctx)
	case *punchTick:
		k.scan(ctx)
		k.schedule(ctx)
	case *punchDone:
		k.done(ctx, msg)
	case *addrsChanged:
		k.addrsChanged(ctx)
	}
}

func (k *punchKeeper) start(ctx actor.Context) {
	k.peers = map[peer.ID]*punchPeer{}
	self, system := ctx.Self(), ctx.ActorSystem()
	notify := func() { system.Root.Send(self, &addrsChanged{}) }
	if err := k.net.OnAddrsChanged(notify); err != nil {
		ctx.Logger().Warn("hole punching is not retried after address changes", "err", err)
	}
	if err := k.net.OnPublicAddrLearned(notify); err != nil {
		ctx.Logger().Warn("hole punching is not retried when a public address is learned", "err", err)
	}
	k.scan(ctx)
	k.schedule(ctx)
}

// addrsChanged makes every punch due: one that failed may work from the
// new address, and one that never ran for want of an address can run now;
// at once, unless a try started less than addrRetry ago.
func (k *punchKeeper) addrsChanged(ctx actor.Context) {
	now := time.Now()
	for id, p := range k.peers {
		p.backoff = k.t.firstBackoff
		p.next = now
		if !p.tried.IsZero() {
			p.next = maxTime(now, p.tried.Add(k.t.addrRetry))
		}
		k.net.SetPunchNext(id, p.next)
	}
	k.scan(ctx)
}

func (k *punchKeeper) schedule(ctx actor.Context) {
	self, system := ctx.Self(), ctx.ActorSystem()
	time.AfterFunc(k.t.checkEvery, func() { system.Root.Send(self, &punchTick{}) })
}

// scan looks at the relayed connections and punches those due.
func (k *punchKeeper) scan(ctx actor.Context) {
	now := time.Now()
	relayed := map[peer.ID]bool{}
	for _, id := range k.net.RelayedOnly() {
		relayed[id] = true
		if _, ok := k.peers[id]; !ok {
			// libp2p punches as the connection opens (or, for one that
			// opened before it could, as soon as it can): the keeper's
			// first try comes a little later, and waits if that one is
			// still under way.
			p := &punchPeer{backoff: k.t.firstBackoff, next: now.Add(k.t.firstTry)}
			k.peers[id] = p
			k.net.SetPunchNext(id, p.next)
		}
	}
	for id, p := range k.peers {
		if !relayed[id] && !p.busy {
			delete(k.peers, id)
			k.net.ForgetPunch(id)
			continue
		}
		if relayed[id] && !p.busy && !now.Before(p.next) {
			k.punch(ctx, id, p)
		}
	}
}

func (k *punchKeeper) punch(ctx actor.Context, id peer.ID, p *punchPeer) {
	p.busy = true
	self, system := ctx.Self(), ctx.ActorSystem()
	started, timeout := time.Now(), k.t.timeout
	go func() {
		c, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := k.net.HolePunch(c, id)
		system.Root.Send(self, &punchDone{id: id, err: err, started: started})
	}()
}

func (k *punchKeeper) done(ctx actor.Context, msg *punchDone) {
	p, ok := k.peers[msg.id]
	if !ok {
		return
	}
	p.busy = false
	switch {
	case errors.Is(msg.err, transport.ErrNoPublicAddr), errors.Is(msg.err, transport.ErrPunchInProgress):
		// Not a try: nothing to punch with yet, or libp2p's own punch
		// still runs (its outcome is recorded as it ends). Look again
		// soon; a failure of that punch is then followed by this one.
		p.next = time.Now().Add(k.t.checkEvery)
		k.net.SetPunchNext(msg.id, p.next)
		return
	case msg.err == nil:
		p.backoff = k.t.firstBackoff
	default:
		ctx.Logger().Info("hole punch failed; retrying", "peer", msg.id.String(), "in", p.backoff, "err", msg.err)
	}
	p.tried = msg.started
	p.next = time.Now().Add(p.backoff)
	if msg.err != nil {
		p.backoff = min(2*p.backoff, k.t.maxBackoff)
	}
	k.net.SetPunchNext(msg.id, p.next)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
