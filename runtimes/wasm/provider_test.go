package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// sharedCache lets the tests' providers share compiled code: a cold
// compile of the guest costs seconds, a cached one milliseconds.
var sharedCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fungi-wasm-cache-")
	if err != nil {
		panic(err)
	}
	sharedCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func testManifest(file string, env map[string]string) *manifest.Manifest {
	m := &manifest.Manifest{APIVersion: manifest.APIVersion, Kind: manifest.Kind}
	m.Metadata.Name = "guest"
	m.Spec.Runtime = manifest.RuntimeWasmtime
	m.Spec.Source.File = file
	m.Spec.Env = env
	m.Spec.Ports = []manifest.Port{{Name: "http", HostPort: manifest.HostPort{Auto: true}, Protocol: "tcp"}}
	return m
}

type running struct {
	p    *Provider
	base string
	log  *testutil.SyncBuffer
	inst runtimes.Instance
}

// startGuest fetches and starts the test guest with cfg's limits.
func startGuest(t *testing.T, cfg Config, mounts []manifest.ResolvedMount) *running {
	t.Helper()
	wasmPath := testutil.BuildWasm(t, "runtimes/wasm/testdata/guest")
	g, err := startModule(t, cfg, wasmPath, map[string]string{"GREETING": "hello from the manifest"}, mounts)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// startModule pulls the module at wasmPath (into the shared cache) and
// starts it as a service with env, mounts and cfg's limits, until the test
// ends; a refused start is the caller's to judge.
func startModule(t *testing.T, cfg Config, wasmPath string, env map[string]string, mounts []manifest.ResolvedMount) (*running, error) {
	t.Helper()
	cfg.CacheDir = sharedCache
	p := New(cfg)
	t.Cleanup(func() { p.Close(context.Background()) })
	m := testManifest(wasmPath, env)
	art, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: m}, func(*messages.PullProgress) {})
	if err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	log := &testutil.SyncBuffer{}
	inst, err := p.Start(context.Background(), runtimes.InstanceSpec{
		Name: "guest", Manifest: m, Artifact: art, Log: log, Mounts: mounts,
		Ports: []runtimes.PortBinding{{Name: "http", HostPort: port}},
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { inst.Stop(context.Background()) })
	return &running{p: p, base: fmt.Sprintf("http://127.0.0.1:%d", port), log: log, inst: inst}, nil
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func TestHandlerModeCGI(t *testing.T) {
	dataDir := t.TempDir()
	os.WriteFile(filepath.Join(dataDir, "note.txt"), []byte("from the mount"), 0o644)
	g := startGuest(t, DefaultConfig(""), []manifest.ResolvedMount{{HostPath: dataDir, RuntimePath: "/data"}})

	resp, err := http.Post(g.base+"/echo?a=1&b=2", "text/plain", strings.NewReader("request body"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "POST a=1&b=2 request body" || resp.Header.Get("X-Method") != "POST" {
		t.Fatalf("echo: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if code, body, _ := get(t, g.base+"/env?name=GREETING"); code != 200 || body != "hello from the manifest" {
		t.Fatalf("manifest env: %d %q", code, body)
	}
	if code, body, _ := get(t, g.base+"/file?name=note.txt"); code != 200 || body != "from the mount" {
		t.Fatalf("mounted folder: %d %q", code, body)
	}
	if code, _, _ := get(t, g.base+"/nothing-here"); code != 404 {
		t.Fatalf("status from the guest: got %d, want 404", code)
	}
	if code, _, _ := get(t, g.base+"/stderr?msg=written-to-the-log"); code != 200 {
		t.Fatalf("stderr request: %d", code)
	}
	if !strings.Contains(g.log.String(), "guest says: written-to-the-log") {
		t.Fatalf("guest stderr missing from the service log:\n%s", g.log.String())
	}
}

func TestCrashAnswers502AndKeepsServing(t *testing.T) {
	g := startGuest(t, DefaultConfig(""), nil)
	code, body, _ := get(t, g.base+"/crash")
	if code != http.StatusBadGateway || !strings.Contains(body, "failed while handling the request") {
		t.Fatalf("crash: %d %q, want 502", code, body)
	}
	if !strings.Contains(g.log.String(), "guest crashed on purpose") {
		t.Fatalf("the panic is not in the log:\n%s", g.log.String())
	}
	if code, _, _ := get(t, g.base+"/echo"); code != 200 {
		t.Fatalf("after a crash the service answered %d, want 200", code)
	}
}

func TestTrapAnswers502(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trap.wasm")
	os.WriteFile(path, testutil.TrapModule, 0o644)
	g, err := startModule(t, DefaultConfig(""), path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		code, _, _ := get(t, g.base+"/")
		if code != http.StatusBadGateway {
			t.Fatalf("trap: got %d, want 502", code)
		}
	}
	if !strings.Contains(g.log.String(), "the guest trapped") {
		t.Fatalf("log does not say it trapped:\n%s", g.log.String())
	}
}

func TestTimeoutAnswers504(t *testing.T) {
	cfg := DefaultConfig("")
	cfg.RequestTimeout = 300 * time.Millisecond
	g := startGuest(t, cfg, nil)
	code, body, _ := get(t, g.base+"/spin?ms=20000")
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "did not answer within 300ms") {
		t.Fatalf("timeout: %d %q, want 504", code, body)
	}
	if code, _, _ := get(t, g.base+"/echo"); code != 200 {
		t.Fatalf("after a timeout the service answered %d", code)
	}
}

func TestConcurrencyLimitAnswers503(t *testing.T) {
	cfg := DefaultConfig("")
	cfg.MaxConcurrency = 1
	cfg.MaxQueued = -1 // no queue: refused at once
	g := startGuest(t, cfg, nil)
	slow := make(chan int, 1)
	go func() {
		resp, err := http.Get(g.base + "/spin?ms=4000")
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	testutil.WaitFor(t, 10*time.Second, "the slow request to hold the only slot", func() error {
		if !strings.Contains(g.log.String(), "spinning for 4000 ms") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	testutil.WaitFor(t, 3*time.Second, "a request refused while the slot is taken", func() error {
		resp, err := http.Get(g.base + "/echo")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("got %d", resp.StatusCode)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
		return nil
	})
	if code := <-slow; code != 200 {
		t.Fatalf("the request holding the slot got %d", code)
	}
}

func TestMemoryLimit(t *testing.T) {
	cfg := DefaultConfig("")
	cfg.MemoryLimitMB = 64
	g := startGuest(t, cfg, nil)
	if code, _, _ := get(t, g.base+"/grow?mb=8"); code != 200 {
		t.Fatalf("8 MB under a 64 MB limit: %d", code)
	}
	if code, _, _ := get(t, g.base+"/grow?mb=200"); code != http.StatusBadGateway {
		t.Fatalf("200 MB over a 64 MB limit: got %d, want 502", code)
	}
	if code, _, _ := get(t, g.base+"/grow?mb=8"); code != 200 {
		t.Fatalf("after running out of memory the service answered %d", code)
	}
}

func TestFetchRefusals(t *testing.T) {
	dir := t.TempDir()
	p := New(DefaultConfig(filepath.Join(dir, "cache")))
	defer p.Close(context.Background())
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		os.WriteFile(path, b, 0o644)
		return path
	}
	component := write("component.wasm", []byte{0, 'a', 's', 'm', 0x0d, 0, 1, 0})
	text := write("notwasm.wasm", []byte("#!/bin/sh\necho hi\n"))
	empty := write("empty.wasm", []byte{0, 'a', 's', 'm', 1, 0, 0, 0})
	sum := sha256.Sum256([]byte("something else"))
	tests := []struct {
		name, file, sha, want string
	}{
		{"component exporting nothing", component, "", "the component exports nothing; fungi runs a component that exports wasi:http/incoming-handler (served) or wasi:cli/run (a job)"},
		{"not wasm", text, "", "not a WebAssembly binary"},
		{"sha mismatch", empty, hex.EncodeToString(sum[:]), "source.sha256 mismatch"},
		{"no _start", empty, "", "no _start export"},
		{"missing file", filepath.Join(dir, "absent.wasm"), "", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testManifest(tc.file, nil)
			m.Spec.Source.SHA256 = tc.sha
			_, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: m}, func(*messages.PullProgress) {})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestFetchURLOnceAndVerifies(t *testing.T) {
	wasmPath := testutil.BuildWasm(t, "runtimes/wasm/testdata/guest")
	bin, _ := os.ReadFile(wasmPath)
	sum := sha256.Sum256(bin)
	hits := 0
	var mu sync.Mutex
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits++
		mu.Unlock()
		w.Write(bin)
	})}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	p := New(DefaultConfig(filepath.Join(t.TempDir(), "cache")))
	defer p.Close(context.Background())
	m := testManifest("", nil)
	m.Spec.Source = manifest.Source{URL: "http://" + ln.Addr().String() + "/guest.wasm", SHA256: hex.EncodeToString(sum[:])}
	var steps []string
	for range 2 {
		art, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: m}, func(pp *messages.PullProgress) { steps = append(steps, pp.Message) })
		if err != nil {
			t.Fatal(err)
		}
		if art.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("artifact hash %s", art.SHA256)
		}
	}
	if hits != 1 {
		t.Fatalf("the URL was downloaded %d times, want once", hits)
	}
	if !strings.Contains(strings.Join(steps, "\n"), "using the cached download") {
		t.Fatalf("second pull did not say it used the cache: %v", steps)
	}
}

// fetchURL pulls url with cfg's download limits and returns Fetch's error,
// failing the test if Fetch is still running after within.
func fetchURL(t *testing.T, cfg Config, url string, within time.Duration) error {
	t.Helper()
	cfg.CacheDir = filepath.Join(t.TempDir(), "cache")
	p := New(cfg)
	defer p.Close(context.Background())
	m := testManifest("", nil)
	m.Spec.Source = manifest.Source{URL: url}
	result := make(chan error, 1)
	go func() {
		_, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: m}, func(*messages.PullProgress) {})
		result <- err
	}()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	select {
	case err := <-result:
		return err
	case <-deadline.C:
		t.Fatalf("the download of %s was still running after %s", url, within)
		return nil
	}
}

func TestDownloadsThatStallOrNeverEndAreGivenUp(t *testing.T) {
	chunk := bytes.Repeat([]byte{0}, 64<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/silent": // never answers
			<-r.Context().Done()
		case "/stalls": // answers, sends a little, then nothing
			w.Header().Set("Content-Length", "1000000")
			w.Write([]byte("\x00asm\x01\x00\x00\x00"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case "/trickles": // sends forever, a byte a write: far too slow to reach the size cap
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk[:1]); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		case "/floods": // sends forever as fast as it can
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/claims-too-much":
			w.Header().Set("Content-Length", strconv.Itoa(maxModuleBytes+1))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	defer srv.Close()
	cfg := DefaultConfig("")
	cfg.DownloadIdleTimeout = 300 * time.Millisecond
	cfg.DownloadTimeout = 2 * time.Second
	for path, want := range map[string]string{
		"/silent":          "nothing arrived for 300ms",
		"/stalls":          "nothing arrived for 300ms",
		"/trickles":        "did not finish within 2s",
		"/claims-too-much": "more than the 256 MiB fungi accepts",
	} {
		t.Run(path, func(t *testing.T) {
			if err := fetchURL(t, cfg, srv.URL+path, 20*time.Second); err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("got %v, want an error containing %q", err, want)
			}
		})
	}
	t.Run("/floods", func(t *testing.T) {
		// The cap is lowered so the test need not send 256 MiB; the check
		// is the same.
		saved := maxModuleBytes
		maxModuleBytes = 4 << 20
		t.Cleanup(func() { maxModuleBytes = saved })
		cfg := cfg
		cfg.DownloadTimeout = time.Minute
		if err := fetchURL(t, cfg, srv.URL+"/floods", 20*time.Second); err == nil || !strings.Contains(err.Error(), "sent more than 4 MiB") {
			t.Fatalf("got %v, want the download refused past the size cap", err)
		}
	})
}

func TestFetchRefusesAFileOverTheSizeCap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "huge.wasm")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file: the check must refuse it by its size, before reading.
	if err := f.Truncate(int64(maxModuleBytes) + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p := New(DefaultConfig(filepath.Join(dir, "cache")))
	defer p.Close(context.Background())
	_, err = p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: testManifest(path, nil)}, func(*messages.PullProgress) {})
	if err == nil || !strings.Contains(err.Error(), "more than the 256 MiB fungi accepts") {
		t.Fatalf("got %v, want the file refused by its size", err)
	}
}
