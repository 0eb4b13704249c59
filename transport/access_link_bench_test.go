package transport

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
)

// linkDelay is the one-way delay asked of the emulated link between the
// two nodes in BenchmarkAccessLink, a LAN or a nearby datacentre; Go's
// timers round it up (about 1 ms one way on Linux), so the direct
// kept-connection figure is the link's actual round trip. On loopback
// every path is bound by the CPU; across a link, round trips are what a
// new connection pays for. The link does not delay TCP's handshake, so
// direct-over-link's new connection is a round trip short of a real one.
const linkDelay = 500 * time.Microsecond

// delayLink listens on loopback and forwards every connection to target,
// each chunk held for delay in each direction: a link with a round trip
// of twice delay, in front of a node's or sshd's port.
func delayLink(b *testing.B, target string, delay time.Duration) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	carry := func(dst, src net.Conn) {
		type chunk struct {
			due  time.Time
			data []byte
		}
		q := make(chan chunk, 1024)
		go func() {
			defer close(q)
			for {
				buf := make([]byte, 64<<10)
				n, err := src.Read(buf)
				if n > 0 {
					q <- chunk{time.Now().Add(delay), buf[:n]}
				}
				if err != nil {
					return
				}
			}
		}()
		// The link's latency itself, not a wait on some state: each chunk
		// is released at the time the emulated link delivers it.
		release := time.NewTimer(0)
		defer release.Stop()
		for c := range q {
			release.Reset(time.Until(c.due))
			<-release.C
			if _, err := dst.Write(c.data); err != nil {
				break
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				up, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				done := make(chan struct{})
				go func() { carry(up, c); close(done) }()
				carry(c, up)
				<-done
				c.Close()
				up.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

// startAccessLink is startAccessOn over TCP with the client host reaching
// the serving host only through a delayLink.
func startAccessLink(b *testing.B, t targets, mode bridgeMode) targets {
	client, clientGate := newTestHost(b)
	server, gate := newTestHost(b)
	trustEachOther(client, clientGate, server, gate, "access")
	var serverTCP string
	for _, a := range server.Addrs() {
		if ip, err := a.ValueForProtocol(ma.P_IP4); err == nil {
			if port, err := a.ValueForProtocol(ma.P_TCP); err == nil {
				serverTCP = net.JoinHostPort(ip, port)
			}
		}
	}
	host, port, _ := net.SplitHostPort(delayLink(b, serverTCP, linkDelay))
	client.Peerstore().ClearAddrs(server.ID())
	client.Peerstore().AddAddr(server.ID(), ma.StringCast("/ip4/"+host+"/tcp/"+port), time.Hour)
	access.Serve(server, gate, func(_ peer.ID, hdr *messages.AccessHeader) (string, error) { return t.echo, nil }, b.Logf)
	open := benchOpener(b, mode, client, server.ID(), &messages.AccessHeader{ServiceId: "echo", Port: "tcp"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c *net.TCPConn) {
				c.SetNoDelay(true)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				s, err := open(ctx)
				cancel()
				if err != nil {
					c.Close()
					return
				}
				if as, ok := s.(*access.Stream); ok {
					access.PipeStream(c, as, func(error) {}, nil)
					return
				}
				access.Pipe(c, s)
			}(c.(*net.TCPConn))
		}
	}()
	return targets{echo: ln.Addr().String()}
}

// BenchmarkAccessLink is the request/response half of BenchmarkAccess
// across an emulated link with a 1 ms round trip: the echo service
// reached over the link directly, through fungi as a node bridges (warm
// streams and early data), with early data alone, with the reply awaited
// first (the path before early data),
// and through `ssh -L` to an sshd behind the same link.
//
//	go test -run '^$' -bench AccessLink -benchtime 5x ./transport
func BenchmarkAccessLink(b *testing.B) {
	fmt.Printf("# BenchmarkAccessLink on %s, load average %s, link delay asked %v each way\n", testutil.CPUModel(), testutil.LoadAvg(), linkDelay)
	t := startTargets(b)
	paths := []struct {
		name string
		t    targets
	}{
		{"direct-over-link", targets{echo: delayLink(b, t.echo, linkDelay)}},
		{"fungi-access-tcp", startAccessLink(b, t, bridgeNode)},
		{"fungi-access-tcp-early-only", startAccessLink(b, t, bridgeEarly)},
		{"fungi-access-tcp-reply-first", startAccessLink(b, t, bridgeReplyFirst)},
	}
	link := func(addr string) string { return delayLink(b, addr, linkDelay) }
	if ssh, ok := startSSHVia(b, t, link); ok {
		paths = append(paths, struct {
			name string
			t    targets
		}{"ssh-L-aes128gcm", ssh})
	}
	for _, p := range paths {
		b.Run("rr-kept-connection/"+p.name, func(b *testing.B) { benchKeptConnection(b, p.t.echo, 200) })
		b.Run("rr-new-connection/"+p.name, func(b *testing.B) { benchNewConnection(b, p.t.echo, 100) })
	}
}
