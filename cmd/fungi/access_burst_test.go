package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	. "github.com/fungi-go/fungi/internal/wasmasm"
	"github.com/fungi-go/fungi/messages"
)

// The burst through an access entry: two real `fungi daemon`s on loopback
// (mDNS, port mapping, the DHT and the dashboard off), a small wasm
// service on B attached on A with `fungi access attach`, and burstRequests
// requests sent to A's local port all at once, each on a connection of
// its own. Every one must be answered 200: requests beyond B's
// maxConcurrency wait for a slot, connections beyond its maxConnections
// for a place, instead of getting 503. `make bench` runs it and prints the
// latencies.
const burstRequests = 1000

// burstBody is what the service answers.
const burstBody = "burst ok\n"

// burstModule is a WASI preview 1 CGI module that writes a plain-text
// answer and returns: as fast as a wasm service can be, so the burst
// measures the access path and the queue rather than a handler.
func burstModule() []byte {
	out := "content-type: text/plain\n\n" + burstBody
	const textAt = 16
	return Cat(CoreHeader,
		Section(1, Vec(2, []byte{0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f}, []byte{0x60, 0, 0})...),
		Section(2, Vec(1, Cat(Str("wasi_snapshot_preview1"), Str("fd_write"), []byte{0x00, 0}))...),
		Section(3, Vec(1, []byte{1})...),
		Section(5, Vec(1, []byte{0x00, 1})...),
		Section(7, Vec(2, Cat(Str("memory"), []byte{0x02, 0}), Cat(Str("_start"), []byte{0x00, 1}))...),
		Section(10, Vec(1, FuncBody([]byte{0}, Cat(
			I32(0), I32(textAt), []byte{0x36, 2, 0}, // iov.buf
			I32(4), I32(int32(len(out))), []byte{0x36, 2, 0}, // iov.len
			I32(1), I32(0), I32(1), I32(8), Call(0), Drop, End)))...),
		Section(11, Vec(1, Cat([]byte{0}, I32(textAt), End, Str(out)))...),
	)
}

const burstManifest = `apiVersion: fungi.dev/v1alpha1
kind: ServiceManifest
metadata: {name: burst}
spec:
  runtime: wasmtime
  expose: {enabled: true, usage: {kind: web}}
  source: {file: %q}
  ports: [{name: http, hostPort: auto}]
  restart: never
`

// quietDrill is a drill (a real daemon on a home of its own) whose config
// keeps it off the network beyond loopback.
func quietDrill(t *testing.T, fungi, name string) *drill {
	d := &drill{t: t, fungi: fungi, home: newQuietHome(t, name), logDir: t.TempDir(), ports: map[string]int{}}
	t.Cleanup(d.shutdown)
	d.startDaemon()
	return d
}

// newQuietHome is a home named name, its config written by quietHome.
func newQuietHome(t *testing.T, name string) *home.Home {
	h, err := home.Open(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	if err := quietHome(h.Dir); err != nil {
		t.Fatal(err)
	}
	return h
}

// nodeInfo is the daemon's peer ID and first listen address.
func (d *drill) nodeInfo() (id, addr string) {
	d.poll(0, "the node's addresses", func(c *daemonClient) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		info, err := c.Info(ctx, &messages.InfoRequest{})
		if err != nil {
			return err
		}
		if len(info.Addrs) == 0 {
			return fmt.Errorf("it listens nowhere yet")
		}
		id, addr = info.PeerId, info.Addrs[0]
		return nil
	})
	return id, addr
}

// accessPort is the local port of the daemon's access entry for service.
func (d *drill) accessPort(service string) string {
	var port string
	d.poll(0, "the access entry for "+service, func(c *daemonClient) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := c.ListAccess(ctx, &messages.AccessListRequest{})
		if err != nil {
			return err
		}
		for _, e := range res.Entries {
			if e.ServiceId == service && len(e.Ports) > 0 {
				_, port, err = net.SplitHostPort(e.Ports[0].LocalAddress)
				return err
			}
		}
		return fmt.Errorf("no access entry for %s", service)
	})
	return port
}

func TestAccessBurst(t *testing.T) {
	fungi, err := exec.LookPath("fungi") // the test binary as fungi, put on PATH by testscript.Main
	if err != nil {
		t.Fatal(err)
	}
	a, b := quietDrill(t, fungi, "a"), quietDrill(t, fungi, "b")
	aID, _ := a.nodeInfo()
	bID, bAddr := b.nodeInfo()
	a.cli("device", "add", bID, "--alias", "node-b", "--addr", bAddr)
	b.cli("device", "trust", aID, "--role", "admin")

	dir := t.TempDir()
	wasm, manifest := filepath.Join(dir, "burst.wasm"), filepath.Join(dir, "burst.yaml")
	if err := os.WriteFile(wasm, burstModule(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, []byte(fmt.Sprintf(burstManifest, wasm)), 0o644); err != nil {
		t.Fatal(err)
	}
	b.cli("service", "pull", manifest)
	b.cli("service", "start", "burst")
	a.cli("access", "attach", "burst", "--peer", "node-b")
	url := "http://127.0.0.1:" + a.accessPort("burst") + "/"

	client := &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: burstRequests, DisableCompression: true},
	}
	defer client.CloseIdleConnections()
	// One request first: the peer connection is open before the burst, so
	// the burst measures requests, not the dial.
	if status, body, err := burstGet(client, url); err != nil || status != http.StatusOK || body != burstBody {
		a.fatalf("the first request through the access entry: %d %q %v", status, body, err)
	}

	type result struct {
		status int
		body   string
		err    error
		took   time.Duration
	}
	results := make([]result, burstRequests)
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(burstRequests)
	done.Add(burstRequests)
	for i := range results {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			t0 := time.Now()
			status, body, err := burstGet(client, url)
			results[i] = result{status, body, err, time.Since(t0)}
		}()
	}
	ready.Wait()
	began := time.Now()
	close(start)
	done.Wait()
	wall := time.Since(began)

	codes := map[string]int{}
	var took []time.Duration
	for _, r := range results {
		switch {
		case r.err != nil:
			codes["error: "+firstLine(r.err.Error())]++
		case r.status != http.StatusOK || r.body != burstBody:
			codes[fmt.Sprintf("%d %q", r.status, firstLine(r.body))]++
		default:
			codes["200"]++
		}
		took = append(took, r.took)
	}
	slices.Sort(took)
	pct := func(p int) time.Duration { return took[(len(took)-1)*p/100] }
	t.Logf("%d concurrent requests through an access entry: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms; all answered in %.2f s (%.0f req/s)",
		burstRequests, ms(pct(50)), ms(pct(90)), ms(pct(99)), ms(took[len(took)-1]), wall.Seconds(), float64(burstRequests)/wall.Seconds())
	if codes["200"] != burstRequests {
		a.fatalf("of %d concurrent requests through the access entry, %d were answered 200 with the service's body; the others: %v", burstRequests, codes["200"], codes)
	}
}

func burstGet(client *http.Client, url string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	return testutil.HTTPDo(client, req)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
