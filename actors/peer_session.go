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
//
// A connection counts as made only once the device answers a ping over
// it. A device that does not trust this node completes the handshake and
// then closes the connection, so the dial itself succeeds; resetting the
// backoff on that would knock on its door every second, forever.
type peerSession struct {
	id      peer.ID
	net     PeerNetwork
	backoff time.Duration
	dialing bool
	gen     uint64
	// answered: the device answered a ping over the current connection.
	answered bool
	// after schedules f in d; time.AfterFunc but in tests.
	after func(d time.Duration, f func())
	// stopDial cancels the dial under way: a device removed is not dialed
	// once more after it left the book.
	stopDial context.CancelFunc
}

type dialDone struct {
	gen uint64
	err error
}

type redialDue struct{ gen uint64 }

type pingDue struct{ gen uint64 }

type pingDone struct {
	gen uint64
	err error
}

func peerSessionProps(id peer.ID, n PeerNetwork) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor { return newPeerSession(id, n) })
}

func newPeerSession(id peer.ID, n PeerNetwork) *peerSession {
	return &peerSession{id: id, net: n, after: func(d time.Duration, f func()) { time.AfterFunc(d, f) }}
}

func (s *peerSession) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		s.dial(ctx)
	case *actor.Stopping:
		if s.stopDial != nil {
			s.stopDial()
		}
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
	case *pingDone:
		s.pinged(ctx, msg)
	case *peerDisconnected:
		s.disconnected(ctx)
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
	gen, self, system, net, id := s.gen, ctx.Self(), ctx.ActorSystem(), s.net, s.id
	c, cancel := context.WithTimeout(context.Background(), sessionDialTimeout)
	s.stopDial = cancel
	go func() {
		defer cancel()
		err := net.Connect(c, id)
		system.Root.Send(self, &dialDone{gen: gen, err: err})
	}()
}

func (s *peerSession) dialed(ctx actor.Context, msg *dialDone) {
	s.dialing = false
	s.stopDial = nil
	if msg.err == nil {
		s.answered = false
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

// ping measures the round trip outside the mailbox and reports back.
func (s *peerSession) ping(ctx actor.Context) {
	gen, self, system, net, id := s.gen, ctx.Self(), ctx.ActorSystem(), s.net, s.id
	go func() {
		c, cancel := context.WithTimeout(context.Background(), sessionDialTimeout)
		_, err := net.Ping(c, id)
		cancel()
		system.Root.Send(self, &pingDone{gen: gen, err: err})
	}()
}

// pinged schedules the next measurement. A ping answered means the device
// let this node in, which is what ends the backoff; a failed one is left
// to the disconnect notification.
func (s *peerSession) pinged(ctx actor.Context, msg *pingDone) {
	if msg.gen != s.gen {
		return
	}
	if msg.err == nil {
		s.answered = true
		s.backoff = 0
	}
	gen, self, system := s.gen, ctx.Self(), ctx.ActorSystem()
	s.after(sessionPingEvery, func() { system.Root.Send(self, &pingDue{gen: gen}) })
}

// disconnected redials: at once-ish after a connection the device had
// answered on, with the backoff still growing after one it closed
// without answering (it does not trust this node, or not yet).
func (s *peerSession) disconnected(ctx actor.Context) {
	if s.answered {
		s.backoff = 0
	}
	s.answered = false
	s.retry(ctx)
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
	s.after(s.backoff, func() { system.Root.Send(self, &redialDue{gen: gen}) })
}
