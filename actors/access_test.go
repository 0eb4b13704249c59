package actors

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport"
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
		{fmt.Errorf("the peer did not accept the connection: %w: the peer refused the stream, it has as many open as it allows (4096 per peer on a fungi node)", transport.ErrStreamLimit), 503, "as many open as it allows"},
		{fmt.Errorf("failed to dial: no addresses"), 502, "no addresses"},
	} {
		f := &accessForwarder{peer: id, rec: &accessRecord{ServiceID: "files", Usage: "web"}, logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			dial: func(context.Context, peer.ID, *messages.AccessHeader) (transport.HalfCloser, error) { return nil, tc.dialErr }}
		client, accepted := loopbackPair(t)
		go f.bridge(context.Background(), accepted, &messages.AccessHeader{ServiceId: "files", Port: "http"})
		client.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(client, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(client), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != tc.status || !strings.Contains(string(body), tc.words) {
			t.Fatalf("dial error %q: status %d, body %q", tc.dialErr, res.StatusCode, body)
		}
	}
}

