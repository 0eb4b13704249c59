package wasm

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// The example app answers GET /api/list through three paths in one run:
// the wasm handler as shipped, the wasm handler without its two
// optimisations (the baseline they are measured against), and the same
// handler compiled natively and run as a plain process.
func BenchmarkRequest(b *testing.B) {
	data := b.TempDir()
	os.WriteFile(filepath.Join(data, "a.txt"), []byte("some file"), 0o644)

	b.Run("wasm-handler", func(b *testing.B) {
		benchRequests(b, startExample(b, data, func(*Provider) {}))
	})
	b.Run("wasm-handler-fresh-memory-all-segments", func(b *testing.B) {
		benchRequests(b, startExample(b, data, func(p *Provider) { p.memory, p.keepSegments = nil, true }))
	})
	b.Run("native-process", func(b *testing.B) {
		benchRequests(b, startNative(b, data))
	})
}

func exampleManifest(wasmPath string) *manifest.Manifest {
	m := testManifest(wasmPath, map[string]string{"FILEBROWSER_ROOT": "/data"})
	m.Metadata.Name = "filebrowser-lite-wasi"
	return m
}

func startExample(b *testing.B, data string, tweak func(*Provider)) string {
	wasmPath := testutil.BuildWasm(b, "examples/apps/filebrowser-lite")
	p := New(DefaultConfig(sharedCache))
	tweak(p)
	b.Cleanup(func() { p.Close(context.Background()) })
	m := exampleManifest(wasmPath)
	art, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: m}, func(*messages.PullProgress) {})
	if err != nil {
		b.Fatal(err)
	}
	port := benchPort(b)
	inst, err := p.Start(context.Background(), runtimes.InstanceSpec{
		Name: m.Metadata.Name, Manifest: m, Artifact: art, Log: io.Discard,
		Mounts: []manifest.ResolvedMount{{HostPath: data, RuntimePath: "/data"}},
		Ports:  []runtimes.PortBinding{{Name: "http", HostPort: port}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { inst.Stop(context.Background()) })
	return fmt.Sprintf("http://127.0.0.1:%d/api/list?path=/", port)
}

func startNative(b *testing.B, data string) string {
	bin := filepath.Join(b.TempDir(), "filebrowser-lite")
	build := exec.Command("go", "build", "-o", bin, "./examples/apps/filebrowser-lite")
	build.Dir = testutil.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build native app: %v\n%s", err, out)
	}
	port := benchPort(b)
	cmd := exec.Command(bin, "-listen", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Env = append(os.Environ(), "FILEBROWSER_ROOT="+data)
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d/api/list?path=/", port)
	testutil.WaitFor(b, 10*time.Second, "the native app", func() error {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	return url
}

func benchPort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// benchRequests sends b.N sequential requests over a kept connection and
// reports latency percentiles and requests per second.
func benchRequests(b *testing.B, url string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	one := func() time.Duration {
		t0 := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return time.Since(t0)
	}
	for range 5 {
		one() // warm the connection and the memory pool
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		lat = append(lat, one())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatency(b, lat, elapsed)
}

func reportLatency(b *testing.B, lat []time.Duration, elapsed time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.90), "p90-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
}

// BenchmarkRequestParallel measures throughput with as many clients as
// cores, each request a fresh wasm instance.
func BenchmarkRequestParallel(b *testing.B) {
	data := b.TempDir()
	for _, tc := range []struct {
		name string
		url  func() string
	}{
		{"wasm-handler", func() string { return startExample(b, data, func(*Provider) {}) }},
		{"native-process", func() string { return startNative(b, data) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			url := tc.url()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
				for pb.Next() {
					resp, err := client.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}

// BenchmarkStart compares starting the example service with its compiled
// code in the on-disk cache against a cold compile.
func BenchmarkStart(b *testing.B) {
	wasmPath := testutil.BuildWasm(b, "examples/apps/filebrowser-lite")
	m := exampleManifest(wasmPath)
	start := func(b *testing.B, cache string) time.Duration {
		p := New(DefaultConfig(cache))
		defer p.Close(context.Background())
		art := runtimes.Artifact{Ref: wasmPath}
		port := benchPort(b)
		t0 := time.Now()
		inst, err := p.Start(context.Background(), runtimes.InstanceSpec{
			Name: m.Metadata.Name, Manifest: m, Artifact: art, Log: io.Discard,
			Ports: []runtimes.PortBinding{{Name: "http", HostPort: port}},
		})
		d := time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		inst.Stop(context.Background())
		return d
	}
	b.Run("cached", func(b *testing.B) {
		cache := b.TempDir()
		start(b, cache) // fill the cache
		var total time.Duration
		b.ResetTimer()
		for range b.N {
			total += start(b, cache)
		}
		b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms/start")
	})
	b.Run("cold-compile", func(b *testing.B) {
		var total time.Duration
		for range b.N {
			total += start(b, b.TempDir())
		}
		b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms/start")
	})
}
