package access_test

import (
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/fungi-go/fungi/transport"
	"github.com/fungi-go/fungi/transport/transporttest"
)

// startHost starts a node's host, with a new gate.
var startHost = transporttest.Starter(transport.NewTrustGate, transport.NewHost)

// trustedPair starts two real hosts on loopback TCP: client is trusted by
// server with role, and server is a dial target of client.
func trustedPair(t testing.TB, role string) (client, server host.Host, serverGate *transport.TrustGate) {
	t.Helper()
	return transporttest.Pair(t, startHost, role)
}

// countingEcho is an echo service that counts the connections it accepted.
func countingEcho(t *testing.T) (addr string, accepted *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String(), accepted
}
