package access_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
	"github.com/fungi-go/fungi/transport/wire"
)

// With early data, access.Open hands the stream back while the peer is
// still deciding, so the first bytes travel right behind the header; they
// reach the service only once it is admitted, and come back.
func TestEarlyDataTravelsBeforeTheReply(t *testing.T) {
	client, server, gate := trustedPair(t, "access")
	echo, accepted := countingEcho(t)
	deciding, admit := make(chan struct{}), make(chan struct{})
	access.Serve(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) {
		close(deciding)
		<-admit
		return echo, nil
	}, t.Logf)

	ctx, cancel := context.WithTimeout(access.WithEarlyData(context.Background()), 10*time.Second)
	defer cancel()
	st, err := access.Open(ctx, client, server.ID(), &messages.AccessHeader{ServiceId: "echo", Port: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Write([]byte("early bytes")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-deciding:
	case <-time.After(10 * time.Second):
		t.Fatal("the header never reached the peer")
	}
	// The peer holds its decision: access.Open did not wait for it, and
	// nothing reached the service yet.
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the service saw %d connections before it was admitted", n)
	}
	close(admit)
	back := make([]byte, len("early bytes"))
	if _, err := io.ReadFull(st, back); err != nil || string(back) != "early bytes" {
		t.Fatalf("echo of the early bytes: %q %v", back, err)
	}
}

// A refusal still arrives with its reason when bytes were sent early, and
// the service never sees a connection.
func TestEarlyDataRefusedKeepsItsReason(t *testing.T) {
	client, server, gate := trustedPair(t, "access")
	_, accepted := countingEcho(t)
	access.Serve(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) {
		return "", errors.New("no service nope")
	}, t.Logf)
	ctx, cancel := context.WithTimeout(access.WithEarlyData(context.Background()), 10*time.Second)
	defer cancel()
	st, err := access.Open(ctx, client, server.ID(), &messages.AccessHeader{ServiceId: "nope", Port: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	_, err = st.Read(make([]byte, 1))
	var remote *wire.RemoteError
	if !errors.As(err, &remote) || !strings.Contains(err.Error(), "no service nope") {
		t.Fatalf("read after a refusal: %v", err)
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("a refused service saw %d connections", n)
	}
}

// access.PipeStream stops the upload of a refused connection and lets the caller
// answer it: the client reads the answer, then the close.
func TestPipeAccessAnswersARefusal(t *testing.T) {
	client, server, gate := trustedPair(t, "access")
	access.Serve(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) {
		return "", errors.New("no service nope")
	}, t.Logf)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	local, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(access.WithEarlyData(context.Background()), 10*time.Second)
	defer cancel()
	st, err := access.Open(ctx, client, server.ID(), &messages.AccessHeader{ServiceId: "nope", Port: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		access.PipeStream(accepted.(*net.TCPConn), st.(*access.Stream), func(err error) {
			io.WriteString(accepted, "refused: "+err.Error())
		}, nil)
	}()
	local.SetDeadline(time.Now().Add(10 * time.Second))
	local.Write([]byte("request"))
	answer, err := io.ReadAll(local)
	if err != nil || !strings.Contains(string(answer), "refused: ") || !strings.Contains(string(answer), "no service nope") {
		t.Fatalf("answer to a refused connection: %q %v", answer, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("access.PipeStream did not return after the refusal")
	}
}

// writeCounter is a stream that counts its writes.
type writeCounter struct {
	network.Stream
	writes atomic.Int32
}

func (w *writeCounter) Write(b []byte) (int, error) {
	w.writes.Add(1)
	return w.Stream.Write(b)
}

// The client's first bytes, given WithFirstBytes, go out in the header's
// own write, and reach the service behind it.
func TestFirstBytesRideTheHeaderWrite(t *testing.T) {
	client, server, gate := trustedPair(t, "access")
	echo, _ := countingEcho(t)
	access.Serve(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) { return echo, nil }, t.Logf)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := client.NewStream(ctx, server.ID(), wire.AccessProtocol)
	if err != nil {
		t.Fatal(err)
	}
	s.Write(nil) // the protocol selection, as a warm stream sends it
	counted := &writeCounter{Stream: s}
	st, err := access.OpenOn(access.WithFirstBytes(access.WithEarlyData(ctx), []byte("first bytes")), counted, &messages.AccessHeader{ServiceId: "echo", Port: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n := counted.writes.Load(); n != 1 {
		t.Fatalf("the header and the first bytes took %d writes, want 1", n)
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	back := make([]byte, len("first bytes"))
	if _, err := io.ReadFull(st, back); err != nil || string(back) != "first bytes" {
		t.Fatalf("echo of the first bytes: %q %v", back, err)
	}
}
