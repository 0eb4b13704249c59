package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"
)

// relayKeeper keeps a reservation on every relay in the node's config, so
// peers that cannot dial this node directly reach it through one. A lost
// reservation (the relay restarted, the connection dropped) is taken again
// with backoff; a held one is renewed before it ends.
type relayKeeper struct {
	relays []peer.AddrInfo
	net    PeerNetwork
	state  map[peer.ID]*relayState
	// stopWatch ends the interface watch (nil without one).
	stopWatch func()
	// hunting is true while a search for relays through the DHT runs;
	// huntGen tells the latest hunt timer from older ones.
	hunting bool
	huntGen uint64
}

type relayState struct {
	info    peer.AddrInfo
	backoff time.Duration
	gen     uint64
	busy    bool
	last    time.Time // when the last reservation was asked for
	// found marks a relay found through the DHT (relayhunt.go), not one
	// of config.yaml; fails counts its failed reservations in a row.
	found bool
	fails int
}

type reserveDue struct {
	id  peer.ID
	gen uint64
}

type reserveDone struct {
	id      peer.ID
	expires time.Time
	err     error
}

const (
	relayFirstBackoff = time.Second
	relayMaxBackoff   = 30 * time.Second
)

func relayKeeperProps(relays []peer.AddrInfo, n PeerNetwork) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &relayKeeper{relays: relays, net: n} })
}

func (k *relayKeeper) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		k.state = map[peer.ID]*relayState{}
		for _, r := range k.relays {
			k.state[r.ID] = &relayState{info: r}
			k.reserve(ctx, r.ID)
		}
		k.watchInterfaces(ctx)
		k.hunt(ctx)
	case *actor.Stopping, *actor.Restarting:
		if k.stopWatch != nil {
			k.stopWatch()
			k.stopWatch = nil
		}
	case *netChanged:
		k.networkChanged(ctx)
	case *reserveDue:
		if s, ok := k.state[msg.id]; ok && s.gen == msg.gen {
			k.reserve(ctx, msg.id)
		}
	case *reserveDone:
		k.done(ctx, msg)
	case *huntDue:
		if msg.gen == k.huntGen {
			k.hunt(ctx)
		}
	case *relaysFound:
		k.relaysFound(ctx, msg)
	case *setRelays:
		k.setRelays(ctx, msg)
	case *peerDisconnected:
		if _, ok := k.state[msg.id]; ok {
			k.reserve(ctx, msg.id)
		}
	case *addrsChanged:
		// Roaming: this node's addresses changed (another network, a new
		// public address), so a reservation may now point at an address
		// that is gone. Take each again at once, at most every
		// relayAddrRetry: a reservation itself changes the addresses.
		for id, s := range k.state {
			if time.Since(s.last) >= relayAddrRetry {
				k.reserve(ctx, id)
			}
		}
	}
}

// netChanged is the interface watch saying this machine's network changed.
type netChanged struct{}

// networkChanged takes every reservation again: this machine moved to
// another network and they were taken from the old one. A try that failed
// while the network was changing leaves no backoff behind.
func (k *relayKeeper) networkChanged(ctx actor.Context) {
	for id, s := range k.state {
		s.backoff, s.fails = 0, 0
		if time.Since(s.last) >= relayNetRetry {
			k.reserve(ctx, id)
		} else if !s.busy {
			gen, self, system := s.gen, ctx.Self(), ctx.ActorSystem()
			time.AfterFunc(relayNetRetry-time.Since(s.last), func() { system.Root.Send(self, &reserveDue{id: id, gen: gen}) })
		}
	}
}

// relayNetRetry is the least time between two reservations on one relay
// that interface changes cause: a link that flaps does not hammer the
// relay.
const relayNetRetry = 2 * time.Second

// watchInterfaces makes the keeper hear of a change of network as soon as
// the device book does (see InterfaceWatcher).
func (k *relayKeeper) watchInterfaces(ctx actor.Context) {
	w, ok := k.net.(InterfaceWatcher)
	if !ok {
		return
	}
	self, system := ctx.Self(), ctx.ActorSystem()
	stop, err := w.WatchInterfaces(func() { system.Root.Send(self, &netChanged{}) })
	if err != nil {
		ctx.Logger().Warn("network changes are not followed; relay reservations are taken again on their timers", "err", err)
		return
	}
	k.stopWatch = stop
}

// relayAddrRetry is the least time between two reservations on one relay
// that an address change causes; a variable so a test can shorten it.
var relayAddrRetry = 10 * time.Second

func (k *relayKeeper) reserve(ctx actor.Context, id peer.ID) {
	s := k.state[id]
	if s.busy {
		return
	}
	s.busy = true
	s.last = time.Now()
	s.gen++
	self, system := ctx.Self(), ctx.ActorSystem()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		exp, err := k.net.Reserve(c, s.info)
		system.Root.Send(self, &reserveDone{id: id, expires: exp, err: err})
	}()
}

func (k *relayKeeper) done(ctx actor.Context, msg *reserveDone) {
	s, ok := k.state[msg.id]
	if !ok { // removed from config.yaml while reserving
		return
	}
	s.busy = false
	if s.found && k.foundDone(ctx, s, msg) {
		return
	}
	var wait time.Duration
	if msg.err != nil {
		s.backoff = min(max(2*s.backoff, relayFirstBackoff), relayMaxBackoff)
		wait = s.backoff
		ctx.Logger().Warn("relay reservation failed; retrying", "relay", msg.id.String(), "in", wait, "err", msg.err)
	} else {
		s.backoff = 0
		wait = time.Until(msg.expires) / 2
	}
	gen, self, system := s.gen, ctx.Self(), ctx.ActorSystem()
	time.AfterFunc(wait, func() { system.Root.Send(self, &reserveDue{id: msg.id, gen: gen}) })
}
