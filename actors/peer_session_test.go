package actors

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gateNet is a PeerNetwork whose device either trusts this node or closes
// every connection right after the handshake, as a real node's gate does
// to a stranger: the dial succeeds, the ping fails and the connection
// drops.
type gateNet struct {
	trusted atomic.Bool
	session atomic.Pointer[actor.PID]
	system  *actor.ActorSystem
}

func (n *gateNet) SetGate(map[peer.ID]string, map[peer.ID]bool) {}
func (n *gateNet) AddAddrs(peer.ID, []ma.Multiaddr)             {}
func (n *gateNet) ClosePeer(peer.ID)                            {}
func (n *gateNet) Connect(context.Context, peer.ID) error       { return nil }
func (n *gateNet) Connected(peer.ID) bool                       { return false }
func (n *gateNet) Reserve(context.Context, peer.AddrInfo) (time.Time, error) {
	return time.Time{}, errors.New("no relays here")
}

func (n *gateNet) Ping(context.Context, peer.ID) (time.Duration, error) {
	if n.trusted.Load() {
		return time.Millisecond, nil
	}
	n.system.Root.Send(n.session.Load(), &peerDisconnected{})
	return 0, errors.New("stream reset")
}

type scheduled struct {
	d time.Duration
	f func()
}

// TestSessionBacksOffFromADeviceThatClosesOnIt: a device that does not
// trust this node lets the dial through and then closes the connection;
// the session's redials must space out (1 s, 2 s, 4 s, …) instead of
// knocking every second forever. Once the device answers, a lost
// connection is redialed after the first step again.
func TestSessionBacksOffFromADeviceThatClosesOnIt(t *testing.T) {
	system := actor.NewActorSystem()
	net := &gateNet{system: system}
	timers := make(chan scheduled, 16)
	props := actor.PropsFromProducer(func() actor.Actor {
		s := newPeerSession("device", net)
		s.after = func(d time.Duration, f func()) { timers <- scheduled{d, f} }
		return s
	})
	pid := system.Root.Spawn(props)
	net.session.Store(pid)
	defer system.Root.Stop(pid)

	// nextRedial returns the wait before the next redial and lets it fire;
	// pings' schedules are taken and left unfired.
	nextRedial := func() time.Duration {
		t.Helper()
		for {
			if s := nextTimer(t, timers); s.d != sessionPingEvery {
				s.f()
				return s.d
			}
		}
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if got := nextRedial(); got != want {
			t.Fatalf("redial of a device that closes on this node after %v, want %v", got, want)
		}
	}

	// The device trusts this node now: the redial that is due gets an
	// answer, and losing that connection starts the backoff over.
	net.trusted.Store(true)
	for range 2 {
		pingScheduled(t, timers)
		system.Root.Send(pid, &peerDisconnected{})
		if got := nextRedial(); got != time.Second {
			t.Fatalf("redial after losing an answered connection after %v, want 1s", got)
		}
	}
}

// nextTimer waits for what the session schedules next.
func nextTimer(t *testing.T, timers <-chan scheduled) scheduled {
	t.Helper()
	select {
	case s := <-timers:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the session scheduled nothing")
		return scheduled{}
	}
}

// pingScheduled waits until the session schedules its next ping, which it
// does once a ping came back.
func pingScheduled(t *testing.T, timers <-chan scheduled) {
	t.Helper()
	if s := nextTimer(t, timers); s.d != sessionPingEvery {
		t.Fatalf("the session scheduled a redial in %v while connected", s.d)
	}
}
