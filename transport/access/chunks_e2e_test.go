package access_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
	"github.com/fungi-go/fungi/transport/wire"
)

// A peer that sends a chunk length over the limit on a reusable stream is
// out of step: the serving node resets the stream and closes the
// service's connection, and nothing past the bad length reaches the
// service.
func TestServerResetsAStreamWithAnOversizedChunk(t *testing.T) {
	client, server, gate := trustedPair(t, "access")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(c) // until the serving node closes it
		got <- b
	}()
	access.Serve(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) { return ln.Addr().String(), nil }, t.Logf)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.NewStream(ctx, server.ID(), wire.AccessReuseProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	msg, err := wire.AppendFrame(nil, &messages.AccessHeader{ServiceId: "svc", Port: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	msg = binary.BigEndian.AppendUint32(msg, 5)
	msg = append(msg, "hello"...)
	msg = binary.BigEndian.AppendUint32(msg, 1<<31) // far over the limit
	msg = append(msg, "never data"...)
	if _, err := s.Write(msg); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if string(b) != "hello" {
			t.Fatalf("the service got %q, want the one good chunk's %q", b, "hello")
		}
	case <-ctx.Done():
		t.Fatal("the service's connection was not closed")
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(s)
	var reply messages.AccessReply
	if err := wire.ReadFrame(br, &reply, wire.MaxAccessFrame); err == nil && reply.Ok {
		_, err = io.ReadAll(br) // the stream must end in a reset, not a clean close
		if err == nil {
			t.Fatal("the stream ended cleanly after a chunk over the limit")
		}
	}
}
