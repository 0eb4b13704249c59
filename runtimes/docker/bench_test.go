package docker

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// BenchmarkStart compares, on one created container of the example image:
// fungi's start (the provider, as the service actor calls it: label check,
// event subscription, start, wait until the app answers) against the
// engine API's ContainerStart and the `docker start` command.
//
//	go test -run '^$' -bench Start -benchtime 20x ./runtimes/docker
func BenchmarkStart(b *testing.B) {
	if !testutil.DockerAvailable(b) {
		b.Skip("no Docker engine")
	}
	image := testutil.BuildExampleImage(b)
	data := b.TempDir()
	p := New(Config{Node: "12D3KooWbenchmark", DataRoot: data, StopGrace: time.Second})
	ctx := context.Background()
	g, err := p.engine(ctx)
	if err != nil {
		b.Fatal(err)
	}
	m := &manifest.Manifest{}
	m.Spec.Runtime = manifest.RuntimeDocker
	port := testutil.FreePort(b)
	spec := runtimes.InstanceSpec{
		Name: "bench-start", Manifest: m, Artifact: runtimes.Artifact{Ref: image}, Log: io.Discard,
		Ports:  []runtimes.PortBinding{{Name: "http", ServicePort: 80, HostPort: port}},
		Mounts: []manifest.ResolvedMount{{HostPath: filepath.Join(data, "bench-start"), RuntimePath: "/data"}},
	}
	os.MkdirAll(filepath.Join(data, "bench-start"), 0o755)
	inst, err := p.Start(ctx, spec) // creates the container
	if err != nil {
		b.Fatal(err)
	}
	inst.Stop(ctx)
	id, _ := g.Find(ctx, p.cfg.Node, "bench-start")
	b.Cleanup(func() { g.Remove(context.Background(), id) })
	stop := func() {
		secs := 1
		g.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs})
	}

	measure := func(b *testing.B, start func()) {
		lat := make([]time.Duration, 0, b.N)
		for range b.N {
			t0 := time.Now()
			start()
			lat = append(lat, time.Since(t0))
			b.StopTimer()
			stop()
			b.StartTimer()
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	}
	b.Run("fungi-provider-start", func(b *testing.B) {
		measure(b, func() {
			inst, err := p.Start(ctx, spec)
			if err != nil {
				b.Fatal(err)
			}
			_ = inst
		})
	})
	b.Run("engine-api-ContainerStart", func(b *testing.B) {
		measure(b, func() {
			if err := g.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("docker-start-command", func(b *testing.B) {
		measure(b, func() {
			if out, err := exec.Command("docker", "start", id).CombinedOutput(); err != nil {
				b.Fatalf("%v: %s", err, out)
			}
		})
	})
}
