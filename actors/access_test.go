package actors

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport"
	"github.com/fungi-go/fungi/transport/access"
	"github.com/fungi-go/fungi/transport/wire"
)

// loopbackPair is a connected TCP pair on 127.0.0.1: the client's end and
// the end the forwarder accepted.
func loopbackPair(t *testing.T) (client net.Conn, accepted *net.TCPConn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return client, c.(*net.TCPConn)
}

// getThroughBridge has f bridge one connection, as an attached web service
// does, sends GET / on it as a browser would, and returns the answer's
// status and body.
func getThroughBridge(t *testing.T, f *accessForwarder) (status int, body string) {
	client, accepted := loopbackPair(t)
	go f.bridge(context.Background(), accepted, &messages.AccessHeader{ServiceId: "files", Port: "http"})
	client.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(client, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(client), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(data)
}

// A web client turned away by a stream limit gets a 503 naming the limit,
// so it retries; an unreachable peer still gets a 502.
func TestForwarderAnswersLimitWith503(t *testing.T) {
	priv, _, _ := crypto.GenerateEd25519Key(nil)
	id, _ := peer.IDFromPrivateKey(priv)
	for _, tc := range []struct {
		dialErr error
		status  int
		words   string
	}{
		{fmt.Errorf("the peer did not accept the connection: %w: the peer refused the stream, it has as many open as it allows (4096 per peer on a fungi node)", wire.ErrStreamLimit), 503, "as many open as it allows"},
		{fmt.Errorf("failed to dial: no addresses"), 502, "has no known address"},
	} {
		f := &accessForwarder{peer: id, rec: &accessRecord{ServiceID: "files", Usage: "web"}, logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			dial: func(context.Context, peer.ID, *messages.AccessHeader) (access.HalfCloser, error) {
				return nil, tc.dialErr
			}}
		if status, body := getThroughBridge(t, f); status != tc.status || !strings.Contains(body, tc.words) {
			t.Fatalf("dial error %q: status %d, body %q", tc.dialErr, status, body)
		}
	}
}

// Stopping a forwarder (detach, shutdown) ends the serving node's side of
// every bridge at once, even while the service is streaming to a client:
// the stream is reset, not just closed on this side.
func TestForwarderStopEndsTheServingSide(t *testing.T) {
	using, serving, servingGate := accessPeers(t)

	// The service streams to its client until its connection breaks.
	svc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ended := make(chan error, 1)
	go func() {
		c, err := svc.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		chunk := make([]byte, 64<<10)
		for {
			if _, err := c.Write(chunk); err != nil {
				ended <- err
				return
			}
		}
	}()
	access.Serve(serving, servingGate, func(peer.ID, *messages.AccessHeader) (string, error) { return svc.Addr().String(), nil }, t.Logf)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &accessRecord{PeerID: serving.ID().String(), ServiceID: "stream", Usage: "tcp", Ports: []accessPortRecord{{Name: "tcp"}}}
	system := actor.NewActorSystem()
	fwd := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &accessForwarder{peer: serving.ID(), rec: rec, listeners: []net.Listener{ln}, logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			dial: func(ctx context.Context, p peer.ID, hdr *messages.AccessHeader) (access.HalfCloser, error) {
				return access.Open(ctx, using, p, hdr)
			}}
	}))
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadFull(client, make([]byte, 1<<20)); err != nil { // the bridge carries the stream
		t.Fatal(err)
	}
	// The client stops reading; the forwarder stops.
	if err := system.Root.StopFuture(fwd).Wait(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		t.Logf("the service's connection ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the serving node still bridges the service to a forwarder that stopped")
	}
}

// accessPeers starts two real hosts on loopback: using dials serving, and
// serving trusts using with the access role.
func accessPeers(t *testing.T) (using, serving host.Host, servingGate *transport.TrustGate) {
	t.Helper()
	mk := func() (host.Host, *transport.TrustGate) {
		priv, _, _ := crypto.GenerateEd25519Key(nil)
		g := transport.NewTrustGate()
		h, err := transport.NewHost(priv, []string{"/ip4/127.0.0.1/tcp/0"}, g, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		return h, g
	}
	using, usingGate := mk()
	serving, servingGate = mk()
	usingGate.Set(map[peer.ID]string{}, map[peer.ID]bool{serving.ID(): true})
	servingGate.Set(map[peer.ID]string{using.ID(): RoleAccess}, map[peer.ID]bool{})
	using.Peerstore().AddAddrs(serving.ID(), serving.Addrs(), time.Hour)
	return using, serving, servingGate
}

// failingListener fails its first accepts with errs, then reports itself
// closed.
type failingListener struct {
	net.Listener
	errs  []error
	calls int
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.calls++
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	return nil, net.ErrClosed
}

// An accept that fails for want of file descriptors does not end the
// entry: it accepts again, until its listener is closed.
func TestForwarderAcceptsAgainAfterAFailedAccept(t *testing.T) {
	ln := &failingListener{errs: []error{errors.New("accept4: too many open files"), errors.New("accept4: too many open files")}}
	f := &accessForwarder{rec: &accessRecord{ServiceID: "files"}, logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	f.acceptLoop(context.Background(), ln, &messages.AccessHeader{ServiceId: "files"})
	if ln.calls != 3 {
		t.Fatalf("accept was called %d times, want 3 (two failures, then the close)", ln.calls)
	}
}
