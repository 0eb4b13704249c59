package access_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
	"github.com/fungi-go/fungi/transport/transporttest"
)

// Both ends of a real stream, as the host hands them out (the opener's
// wrapped for protocol negotiation, the handler's bare) and as the access
// path wraps them, lead to their yamux stream; a go-libp2p upgrade that
// moves the wrapped fields fails here rather than quietly turning
// delivery off.
func TestYamuxStreamOf(t *testing.T) {
	client, server, _ := trustedPair(t, "access")
	handled := make(chan network.Stream, 1)
	server.SetStreamHandler("/fungi/test-unwrap/1", func(s network.Stream) { handled <- s })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.NewStream(ctx, server.ID(), "/fungi/test-unwrap/1")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Write([]byte("x"))
	var in network.Stream
	select {
	case in = <-handled:
	case <-ctx.Done():
		t.Fatal("the stream never reached its handler")
	}
	defer in.Close()
	for name, st := range map[string]any{
		"opened":          s,
		"handled":         in,
		"buffered":        access.Buffered(in),
		"access (opened)": access.Opened(s),
	} {
		if access.YamuxStreamOf(st) == nil {
			t.Errorf("%s stream (%T): no yamux stream found under it", name, st)
		}
	}
	for name, st := range map[string]any{"tcp conn": &net.TCPConn{}, "nil": nil, "nil stream": access.NilBuffered} {
		if access.YamuxStreamOf(st) != nil {
			t.Errorf("%s: a yamux stream found where there is none", name)
		}
	}
}

// On a kept connection through the access path, each message reaches the
// local socket from the receive loop on both nodes: the bridge's reading
// goroutine is not woken for it.
func TestAccessBridgeDelivers(t *testing.T) {
	client, server, gate := trustedPair(t, "access")
	echo, _ := countingEcho(t)
	access.Serve(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) { return echo, nil }, t.Logf)
	entry := transporttest.ForwardLocally(t, client, server.ID(), &messages.AccessHeader{ServiceId: "echo", Port: "tcp"})
	c, err := net.Dial("tcp", entry)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	msg, back := make([]byte, 64), make([]byte, 64)
	roundTrip := func(i int) {
		msg[0] = byte(i)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, back); err != nil {
			t.Fatal(err)
		}
		if back[0] != byte(i) {
			t.Fatalf("round trip %d came back as %d", i, back[0])
		}
	}
	roundTrip(0) // the stream's first bytes pass the handshake and the reply
	before := access.DeliveredBytes()
	const rounds = 100
	for i := range rounds {
		roundTrip(i + 1)
	}
	// Both nodes deliver each message once it is under way: 128 bytes a
	// round trip. A few may still find a reader on its way back to wait.
	if got := access.DeliveredBytes() - before; got < rounds*128/2 {
		t.Fatalf("%d bytes delivered from the receive loops in %d round trips, want most of %d", got, rounds, rounds*128)
	}
}
