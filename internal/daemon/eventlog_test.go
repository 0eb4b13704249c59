package daemon

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/fungi-go/fungi/transport"
)

// The connection log never holds a new connection: its alias comes from
// an actor, which may be busy (at a daemon's start the device book waits
// for libp2p's notifier lock, which libp2p holds while it notifies). Here
// the alias never comes, and a stream on the new connection is accepted
// at once all the same; asked inline, it waited for the ask's timeout.
func TestEventLogDoesNotHoldNewConnections(t *testing.T) {
	newHost := func() (host.Host, *transport.TrustGate) {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		gate := transport.NewTrustGate()
		h, err := transport.NewHost(k, []string{"/ip4/127.0.0.1/tcp/0"}, gate, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h, gate
	}
	a, gateA := newHost()
	b, gateB := newHost()
	gateA.Set(map[peer.ID]string{b.ID(): "access"}, nil)
	gateB.Set(map[peer.ID]string{a.ID(): "access"}, map[peer.ID]bool{a.ID(): true})

	never := make(chan struct{})
	stop := logEvents(slog.New(slog.NewTextHandler(io.Discard, nil)), a, transport.NewRelays(), func(peer.ID) string {
		<-never
		return ""
	})
	// Cleanups run last first: the alias is released before the log stops.
	t.Cleanup(stop)
	t.Cleanup(func() { close(never) })

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatalf("connect: %v (the event log held the connection)", err)
	}
	res := <-ping.Ping(ctx, b, a.ID())
	if res.Error != nil {
		t.Fatalf("a ping on a connection the event log saw: %v (the log held the connection)", res.Error)
	}
}
