package actors

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"
)

const (
	sessionFirstBackoff = time.Second
	sessionMaxBackoff   = time.Minute
	sessionDialTimeout  = 10 * time.Second
	// sessionPingEvery keeps the RTT fresh and finds a dead connection
	// before a user does.
	sessionPingEvery = 30 * time.Second
)

// peerSession keeps this node connected to one device it dials: it dials
// at start, and again with backoff whenever the connection is lost.
type peerSession struct {
	id      peer.ID
	net     PeerNetwork
	backoff time.Duration
	dialing bool
	gen     uint64
}

type dialDone struct {
	gen uint64
	err error
}

type redialDue struct{ gen uint64 }

type pingDue struct{ gen uint64 }

func peerSessionProps(id peer.ID, n PeerNetwork) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return &peerSession{id: id, net: n} })
}

func (s *peerSession) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.dial(ctx)
	case *dialDone:
		s.dialed(ctx, msg)
	case *redialDue:
		if msg.gen == s.gen {
			s.dial(ctx)
		}
	case *pingDue:
		if msg.gen == s.gen {
			s.ping(ctx)
		}
	case *peerDisconnected:
		s.backoff = 0
		s.retry(ctx)
	case *addrsChanged:
		// This node moved: a device it could not reach may be reachable
		// now, so dial it at once instead of at the end of the backoff.
		if !s.dialing && !s.net.Connected(s.id) {
			s.backoff = 0
			s.dial(ctx)
		}
	}
}

func (s *peerSession) dial(ctx actor.Context) {
	if s.dialing {
		return
	}
	s.dialing = true
	s.gen++
	gen, self, system := s.gen, ctx.Self(), ctx.ActorSystem()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), sessionDialTimeout)
		defer cancel()
		err := s.net.Connect(c, s.id)
		system.Root.Send(self, &dialDone{gen: gen, err: err})
	}()
}

func (s *peerSession) dialed(ctx actor.Context, msg *dialDone) {
	s.dialing = false
	if msg.err == nil {
		s.backoff = 0
		if an, ok := s.net.(interface{ ConnAddr(peer.ID) string }); ok && ctx.Parent() != nil {
			ctx.Send(ctx.Parent(), &reachedVia{id: s.id, addr: an.ConnAddr(s.id)})
		}
		s.ping(ctx)
		return
	}
	if addrs := failedAddrs(msg.err); len(addrs) > 0 && ctx.Parent() != nil {
		ctx.Send(ctx.Parent(), &dialFailed{id: s.id, addrs: addrs})
	}
	if !errors.Is(msg.err, context.Canceled) {
		s.retry(ctx)
	}
}

// ping measures the round trip now and schedules the next measurement; a
// failed ping is left to the disconnect notification.
func (s *peerSession) ping(ctx actor.Context) {
	gen, self, system := s.gen, ctx.Self(), ctx.ActorSystem()
	go func() {
		c, cancel := context.WithTimeout(context.Background(), sessionDialTimeout)
		s.net.Ping(c, s.id)
		cancel()
		time.AfterFunc(sessionPingEvery, func() { system.Root.Send(self, &pingDue{gen: gen}) })
	}()
}

func (s *peerSession) retry(ctx actor.Context) {
	if s.dialing {
		return
	}
	if s.backoff == 0 {
		s.backoff = sessionFirstBackoff
	} else {
		s.backoff = min(2*s.backoff, sessionMaxBackoff)
	}
	s.gen++
	gen, self, system := s.gen, ctx.Self(), ctx.ActorSystem()
	time.AfterFunc(s.backoff, func() { system.Root.Send(self, &redialDue{gen: gen}) })
}
