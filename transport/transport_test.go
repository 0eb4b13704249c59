package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
	"github.com/fungi-go/fungi/transport/transporttest"
	"github.com/fungi-go/fungi/transport/wire"
)

// startHost starts a node's host, with a new gate.
var startHost = transporttest.Starter(NewTrustGate, NewHost)

// trustedPair starts two real hosts on loopback TCP: client is trusted by server
// with role, and server is a dial target of client.
func trustedPair(t testing.TB, role string) (client, server host.Host, serverGate *TrustGate) {
	t.Helper()
	return transporttest.Pair(t, startHost, role)
}

// newTestHost starts a real host on loopback TCP whose gate admits nobody
// yet.
func newTestHost(t testing.TB) (host.Host, *TrustGate) {
	t.Helper()
	return transporttest.Host(t, startHost, transporttest.LoopbackTCP)
}

// newTestHostOn is newTestHost listening on listen (TCP or QUIC).
func newTestHostOn(t testing.TB, listen string) (host.Host, *TrustGate) {
	t.Helper()
	return transporttest.Host(t, startHost, listen)
}

// The helpers of transporttest by the names this package's tests use.
var (
	testKey            = transporttest.Key
	closedLoopbackAddr = transporttest.ClosedLoopbackAddr
	trustEachOther     = transporttest.TrustEachOther[*TrustGate]
	echoControl        = transporttest.EchoControl
)

func rawStream(t *testing.T, client, server host.Host, proto string) network.Stream {
	t.Helper()
	s, err := client.NewStream(context.Background(), server.ID(), protocol.ID(proto))
	if err != nil {
		t.Fatal(err)
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	return s
}

func readReply(t *testing.T, s network.Stream) *messages.Envelope {
	t.Helper()
	var e messages.Envelope
	if err := wire.ReadFrame(bufio.NewReader(s), &e, wire.MaxControlFrame); err != nil {
		t.Fatalf("no error reply: %v", err)
	}
	return &e
}

func TestControlRefusesBadFramesAndKeepsServing(t *testing.T) {
	client, server, gate := trustedPair(t, "admin")
	ServeControl(server, gate, echoControl)

	// Oversized: the length alone is refused, the body is never read.
	s := rawStream(t, client, server, wire.ControlProtocol)
	s.Write(binary.AppendUvarint(nil, 1<<40))
	if e := readReply(t, s); e.GetError().GetCode() != "too_large" || !strings.Contains(e.GetError().GetMessage(), "frame too large") {
		t.Fatalf("oversized frame: %v", e)
	}
	s.Close()

	// Malformed: a length, then bytes that are no protobuf.
	s = rawStream(t, client, server, wire.ControlProtocol)
	s.Write(append(binary.AppendUvarint(nil, 4), 0xff, 0xff, 0xff, 0xff))
	if e := readReply(t, s); e.GetError().GetCode() != "invalid" || !strings.Contains(e.GetError().GetMessage(), "malformed frame") {
		t.Fatalf("malformed frame: %v", e)
	}
	s.Close()

	// Cut short: announces more than it sends, then half-closes.
	s = rawStream(t, client, server, wire.ControlProtocol)
	s.Write(append(binary.AppendUvarint(nil, 100), 1, 2, 3))
	s.CloseWrite()
	if e := readReply(t, s); e.GetError().GetCode() != "invalid" || !strings.Contains(e.GetError().GetMessage(), "cut short") {
		t.Fatalf("short frame: %v", e)
	}
	s.Close()

	// And the node still serves a good request.
	var got int
	err := CallControl(context.Background(), client, server.ID(), &messages.Envelope{RequestId: 7, Body: &messages.Envelope_Catalog{Catalog: &messages.CatalogRequest{}}}, func(e *messages.Envelope) error {
		if e.RequestId != 7 {
			t.Errorf("reply to request %d, want 7", e.RequestId)
		}
		got++
		return nil
	})
	if err != nil || got != 1 {
		t.Fatalf("good request after bad ones: %v (%d replies)", err, got)
	}
}

func TestAccessRefusesBadHeadersAndKeepsServing(t *testing.T) {
	client, server, gate := trustedPair(t, "access")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.(*net.TCPConn).CloseWrite() }()
		}
	}()
	access.Serve(server, gate, func(from peer.ID, hdr *messages.AccessHeader) (string, error) {
		if hdr.ServiceId != "echo" {
			return "", &wire.RemoteError{Message: "no service " + hdr.ServiceId}
		}
		return ln.Addr().String(), nil
	}, t.Logf)

	for name, payload := range map[string][]byte{
		"oversized": binary.AppendUvarint(nil, wire.MaxAccessFrame+1),
		"malformed": append(binary.AppendUvarint(nil, 3), 0xff, 0xff, 0xff),
	} {
		s := rawStream(t, client, server, wire.AccessProtocol)
		s.Write(payload)
		var reply messages.AccessReply
		if err := wire.ReadFrame(bufio.NewReader(s), &reply, wire.MaxAccessFrame); err != nil {
			t.Fatalf("%s: no reply: %v", name, err)
		}
		if reply.Ok || !strings.Contains(reply.Error, "bad access header") {
			t.Fatalf("%s: reply %v", name, &reply)
		}
		s.Close()
	}

	if _, err := access.Open(context.Background(), client, server.ID(), &messages.AccessHeader{ServiceId: "nope"}); err == nil || !strings.Contains(err.Error(), "no service nope") {
		t.Fatalf("unknown service: %v", err)
	}

	// A good stream: bytes both ways, and half-close carries the end.
	st, err := access.Open(context.Background(), client, server.ID(), &messages.AccessHeader{ServiceId: "echo", Port: "x"})
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("ping through access"))
	st.CloseWrite()
	back, err := io.ReadAll(st)
	if err != nil || string(back) != "ping through access" {
		t.Fatalf("echo: %q %v", back, err)
	}
	st.Close()
}

func TestStrangerGetsNoConnection(t *testing.T) {
	client, server, gate := trustedPair(t, "access")
	gate.Set(map[peer.ID]string{}, map[peer.ID]bool{}) // the client is a stranger now
	ServeControl(server, gate, echoControl)
	err := CallControl(context.Background(), client, server.ID(), &messages.Envelope{Body: &messages.Envelope_Catalog{Catalog: &messages.CatalogRequest{}}}, func(*messages.Envelope) error { return nil })
	if err == nil {
		t.Fatal("a stranger ran a request")
	}
	if server.Network().Connectedness(client.ID()) == network.Connected {
		t.Fatal("the server kept a connection to a stranger")
	}
}
