package daemon

import (
	"context"
	"io"
	"net"
	"os"
	"sort"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

// quietConfig is the config of a daemon in a test: no mDNS multicast and no
// UPnP/NAT-PMP requests to the gateway, so nothing leaves the machine.
const quietConfig = "mdns: false\nportMapping: false\ndiscovery: {dht: false}\nui:\n  enabled: false\n"

// startDaemon runs a real node in this process, with quietConfig, and
// returns an API client.
func startDaemon(tb testing.TB) (messages.DaemonClient, *messages.NodeInfo) {
	c, info, _ := startDaemonLogged(tb, io.Discard)
	return c, info
}

// startDaemonLogged is startDaemon with the daemon's log going to log; it
// also returns the node's home.
func startDaemonLogged(tb testing.TB, log io.Writer) (messages.DaemonClient, *messages.NodeInfo, *home.Home) {
	h, err := home.Open(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(h.ConfigPath(), []byte(quietConfig), 0o600); err != nil {
		tb.Fatal(err)
	}
	c, info := startDaemonIn(tb, h, "/ip4/127.0.0.1/tcp/0", log)
	return c, info, h
}

// startDaemonIn runs a real node in this process on home h (config
// written), listening on listen, and returns an API client.
func startDaemonIn(tb testing.TB, h *home.Home, listen string, log io.Writer) (messages.DaemonClient, *messages.NodeInfo) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Home: h, Listen: []string{listen}, Log: log})
	}()
	tb.Cleanup(func() { cancel(); <-done })
	conn, err := grpc.NewClient("unix://"+h.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	c := messages.NewDaemonClient(conn)
	var info *messages.NodeInfo
	testutil.WaitFor(tb, 30*time.Second, "the daemon", func() error {
		probe, err := net.Dial("unix", h.SocketPath())
		if err != nil {
			return err
		}
		probe.Close() // left open, it holds the API server's stop for two minutes
		info, err = c.Info(context.Background(), &messages.InfoRequest{})
		return err
	})
	return c, info
}

// BenchmarkRemoteAdminCommand measures `peer admin service list` at the
// API level: CLI API → local daemon → control stream on the open peer
// connection → the peer's actors → back. No process starts.
func BenchmarkRemoteAdminCommand(b *testing.B) {
	a, _ := startDaemon(b)
	peerB, infoB := startDaemon(b)
	infoA, _ := a.Info(context.Background(), &messages.InfoRequest{})
	ctx := context.Background()
	if _, err := a.AddDevice(ctx, &messages.DeviceAdd{PeerId: infoB.PeerId, Alias: "node-b", Addrs: infoB.Addrs}); err != nil {
		b.Fatal(err)
	}
	if _, err := peerB.TrustDevice(ctx, &messages.DeviceTrust{Device: infoA.PeerId, Role: "admin"}); err != nil {
		b.Fatal(err)
	}
	call := func() {
		stream, err := a.Remote(ctx, &messages.RemoteRequest{Device: "node-b", Request: &messages.Envelope{Body: &messages.Envelope_List{List: &messages.ListServicesRequest{}}}})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := stream.Recv(); err == io.EOF {
				return
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
	call() // opens the peer connection
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		call()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
}
