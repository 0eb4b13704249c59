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
}

// Backoff of punch retries: libp2p punches once when a relayed connection
// opens; a NAT that said no then may say yes later (a router restarted, a
// port opened, the other side moved), so a connection still relayed is
// punched again, 30 s after, doubling to 10 min, and at once (at most every
// punchAddrRetry) after this node's addresses change.
const (
	punchFirstBackoff = 30 * time.Second
	punchMaxBackoff   = 10 * time.Minute
	punchAddrRetry    = 10 * time.Second
	punchCheckEvery   = 5 * time.Second
	punchFirstTry     = 5 * time.Second
	punchTimeout      = 2 * time.Minute
)

// punchKeeper retries hole punching on every connection that is still
// relayed. The attempts run off the mailbox and report back.
type punchKeeper struct {
	net   HolePuncher
	peers map[peer.ID]*punchPeer
}

type punchPeer struct {
	backoff time.Duration
	next    time.Time
	last    time.Time
	busy    bool
}

type punchTick struct{}

type punchDone struct {
	id  peer.ID
	err error
}

type addrsChanged struct{}

func punchKeeperProps(n HolePuncher) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &punchKeeper{net: n} })
}

func (k *punchKeeper) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		k.peers = map[peer.ID]*punchPeer{}
		self, system := ctx.Self(), ctx.ActorSystem()
		if err := k.net.OnAddrsChanged(func() { system.Root.Send(self, &addrsChanged{}) }); err != nil {
			ctx.Logger().Warn("hole punching is not retried after address changes", "err", err)
		}
		k.tick(ctx)
	case *punchTick:
		k.tick(ctx)
	case *punchDone:
		k.done(ctx, msg)
	case *addrsChanged:
		now := time.Now()
		for id, p := range k.peers {
			p.backoff = punchFirstBackoff
			p.next = maxTime(now, p.last.Add(punchAddrRetry))
			k.net.SetPunchNext(id, p.next)
		}
	}
}

// tick looks at the relayed connections, punches those due and schedules
// the next look.
func (k *punchKeeper) tick(ctx actor.Context) {
	now := time.Now()
	relayed := map[peer.ID]bool{}
	for _, id := range k.net.RelayedOnly() {
		relayed[id] = true
		if _, ok := k.peers[id]; !ok {
			// libp2p punches as the connection opens, but only once its
			// hole punching is ready (it knows a public address of this
			// node), which may be seconds after start: the first try
			// comes soon, and is a no-op while libp2p's own still runs.
			p := &punchPeer{backoff: punchFirstBackoff, next: now.Add(punchFirstTry), last: now}
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
	self, system := ctx.Self(), ctx.ActorSystem()
	time.AfterFunc(punchCheckEvery, func() { system.Root.Send(self, &punchTick{}) })
}

func (k *punchKeeper) punch(ctx actor.Context, id peer.ID, p *punchPeer) {
	p.busy = true
	p.last = time.Now()
	self, system := ctx.Self(), ctx.ActorSystem()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), punchTimeout)
		defer cancel()
		err := k.net.HolePunch(c, id)
		system.Root.Send(self, &punchDone{id: id, err: err})
	}()
}

func (k *punchKeeper) done(ctx actor.Context, msg *punchDone) {
	p, ok := k.peers[msg.id]
	if !ok {
		return
	}
	p.busy = false
	switch {
	case msg.err == nil:
		p.backoff = punchFirstBackoff
	case errors.Is(msg.err, transport.ErrNoPublicAddr):
		// Not a failed punch: try again once an address is known.
		p.next = time.Now().Add(punchCheckEvery)
		k.net.SetPunchNext(msg.id, p.next)
		return
	default:
		p.backoff = min(2*p.backoff, punchMaxBackoff)
		ctx.Logger().Info("hole punch failed; retrying", "peer", msg.id.String(), "in", p.backoff, "err", msg.err)
	}
	p.next = time.Now().Add(p.backoff)
	k.net.SetPunchNext(msg.id, p.next)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
