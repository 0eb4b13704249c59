package daemon_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/daemon/daemontest"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

// BenchmarkRemoteAdminCommand measures `peer admin service list` at the
// API level: CLI API → local daemon → control stream on the open peer
// connection → the peer's actors → back. No process starts.
func BenchmarkRemoteAdminCommand(b *testing.B) {
	a := daemontest.Start(b, daemontest.Options{}).API
	nb := daemontest.Start(b, daemontest.Options{})
	peerB, infoB := nb.API, nb.Info
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
		if _, err := testutil.RecvAll(stream); err != nil {
			b.Fatal(err)
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
