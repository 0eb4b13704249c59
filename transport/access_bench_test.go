package transport

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
)

// The access path measured against its baselines in one run: the same
// target reached directly on loopback, through fungi's access path (a
// local listener bridged to an access stream, exactly as the access
// forwarder does), and through `ssh -L` with aes128-gcm.
//
// Each fungi path is run over TCP (TLS 1.3 and yamux) and over QUIC.
//
//	go test -run '^$' -bench Access -benchtime 10x ./transport

// targets are the services at the far end: a sink that reads to EOF and
// answers one byte, and an echo server.
type targets struct{ sink, echo string }

func startTargets(b *testing.B) targets {
	return targets{sink: testutil.ServeSink(b), echo: testutil.ServeEcho(b)}
}

// startAccess is startAccessOn over TCP as a node bridges.
func startAccess(b *testing.B, t targets) targets {
	return startAccessOn(b, t, "/ip4/127.0.0.1/tcp/0", bridgeNode)
}

// How the benchmark's bridge gets its stream: as a node does (an
// access.Dialer: warm streams and early data), with early data on a fresh
// stream each time (the path before warm streams), or the reply first (the
// path before early data: a round trip, then the bytes).
type bridgeMode int

const (
	bridgeNode bridgeMode = iota
	bridgeEarly
	bridgeReplyFirst
)

// benchOpener returns how a bridge in mode opens its access stream from
// client to server.
func benchOpener(b *testing.B, mode bridgeMode, client host.Host, server peer.ID, hdr *messages.AccessHeader) func(context.Context) (access.HalfCloser, error) {
	if mode == bridgeNode {
		d := access.NewDialer(client)
		b.Cleanup(d.Close)
		return func(ctx context.Context) (access.HalfCloser, error) {
			return d.Open(access.WithEarlyData(ctx), server, hdr)
		}
	}
	return func(ctx context.Context) (access.HalfCloser, error) {
		if mode != bridgeReplyFirst {
			ctx = access.WithEarlyData(ctx)
		}
		return access.Open(ctx, client, server, hdr)
	}
}

// startAccessOn runs two libp2p hosts listening on listen (TCP or QUIC) and
// returns local addresses whose connections travel over access streams to
// the sink and the echo server, bridged exactly as the access forwarder
// does with mode.
func startAccessOn(b *testing.B, t targets, listen string, mode bridgeMode) targets {
	client, clientGate := newTestHostOn(b, listen)
	server, gate := newTestHostOn(b, listen)
	trustEachOther(client, clientGate, server, gate, "access")
	access.Serve(server, gate, func(_ peer.ID, hdr *messages.AccessHeader) (string, error) {
		if hdr.ServiceId == "sink" {
			return t.sink, nil
		}
		return t.echo, nil
	}, b.Logf)
	forward := func(service string) string {
		open := benchOpener(b, mode, client, server.ID(), &messages.AccessHeader{ServiceId: service, Port: "tcp"})
		ln, err := access.ListenLocal("127.0.0.1:0")
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
		return ln.Addr().String()
	}
	return targets{sink: forward("sink"), echo: forward("echo")}
}

// startSSH forwards to both targets with `ssh -L` through a loopback sshd.
func startSSH(b *testing.B, t targets) (targets, bool) {
	return startSSHVia(b, t, func(addr string) string { return addr })
}

// startSSHVia is startSSH with ssh reaching sshd at link(sshd's address).
func startSSHVia(b *testing.B, t targets, link func(string) string) (targets, bool) {
	srv, ok := testutil.StartSSHD(b)
	if !ok {
		return targets{}, false
	}
	_, port, _ := net.SplitHostPort(link(srv.Addr))
	sinkPort, echoPort := testutil.FreePort(b), testutil.FreePort(b)
	args := append(srv.Args(), "-N", "-p", port, "-o", "ExitOnForwardFailure=yes",
		"-L", fmt.Sprintf("127.0.0.1:%d:%s", sinkPort, t.sink),
		"-L", fmt.Sprintf("127.0.0.1:%d:%s", echoPort, t.echo),
		"root@127.0.0.1")
	ssh := exec.Command("ssh", args...)
	ssh.Stderr = os.Stderr
	if err := ssh.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ssh.Process.Kill(); ssh.Wait() })
	out := targets{sink: fmt.Sprintf("127.0.0.1:%d", sinkPort), echo: fmt.Sprintf("127.0.0.1:%d", echoPort)}
	testutil.WaitFor(b, 10*time.Second, "ssh -L to forward", func() error {
		return testutil.EchoOnce(out.echo, time.Second)
	})
	return out, true
}

const streamBytes = 128 << 20

func BenchmarkAccess(b *testing.B) {
	fmt.Printf("# BenchmarkAccess on %s, load average %s\n", testutil.CPUModel(), testutil.LoadAvg())
	t := startTargets(b)
	type path struct {
		name string
		t    targets
		// rrOnly paths skip the throughput runs: they differ from
		// another path only before the first byte flows.
		rrOnly bool
	}
	paths := []path{
		{name: "direct-loopback", t: t},
		{name: "fungi-access-tcp", t: startAccessOn(b, t, "/ip4/127.0.0.1/tcp/0", bridgeNode)},
		{name: "fungi-access-tcp-early-only", t: startAccessOn(b, t, "/ip4/127.0.0.1/tcp/0", bridgeEarly), rrOnly: true},
		{name: "fungi-access-tcp-reply-first", t: startAccessOn(b, t, "/ip4/127.0.0.1/tcp/0", bridgeReplyFirst), rrOnly: true},
		{name: "fungi-access-quic", t: startAccessOn(b, t, "/ip4/127.0.0.1/udp/0/quic-v1", bridgeNode)},
	}
	if ssh, ok := startSSH(b, t); ok {
		paths = append(paths, path{name: "ssh-L-aes128gcm", t: ssh})
	}
	for _, p := range paths {
		if !p.rrOnly {
			b.Run("throughput-1-stream/"+p.name, func(b *testing.B) {
				b.SetBytes(streamBytes)
				for range b.N {
					if err := testutil.SendToSink(p.t.sink, streamBytes); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("throughput-8-streams/"+p.name, func(b *testing.B) {
				b.SetBytes(streamBytes)
				for range b.N {
					var wg sync.WaitGroup
					for range 8 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							if err := testutil.SendToSink(p.t.sink, streamBytes/8); err != nil {
								b.Error(err)
							}
						}()
					}
					wg.Wait()
				}
			})
		}
		b.Run("rr-kept-connection/"+p.name, func(b *testing.B) { benchKeptConnection(b, p.t.echo, 1000) })
		b.Run("rr-new-connection/"+p.name, func(b *testing.B) { benchNewConnection(b, p.t.echo, 200) })
	}
}

// benchKeptConnection times n round trips of 64 bytes over one kept
// connection to the echo service at addr, spread over b.N.
func benchKeptConnection(b *testing.B, addr string, n int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg, back := make([]byte, 64), make([]byte, 64)
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for range b.N {
		for range n / max(1, b.N) {
			t0 := time.Now()
			c.Write(msg)
			if _, err := io.ReadFull(c, back); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
	}
	reportPercentiles(b, lat)
}

// benchNewConnection times n new connections to the echo service at addr,
// each with one round trip, spread over b.N.
func benchNewConnection(b *testing.B, addr string, n int) {
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for range b.N {
		for range n / max(1, b.N) {
			t0 := time.Now()
			if err := testutil.EchoOnce(addr, time.Second); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
	}
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	us := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1000 }
	b.ReportMetric(us(0.5), "p50-µs")
	b.ReportMetric(us(0.9), "p90-µs")
	b.ReportMetric(us(0.99), "p99-µs")
}
