package wasm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
)

func TestEndlessCGIHeaderAnswers502WithBoundedHostMemory(t *testing.T) {
	g := startGuest(t, DefaultConfig(""), nil)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	// The guest writes one header line of 512 MiB; before the bound the
	// host read all of it into one string.
	code, body, _ := get(t, g.base+"/huge-header")
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 128<<20 {
		t.Fatalf("the host allocated %d MiB while refusing the header", alloc>>20)
	}
	if code != http.StatusBadGateway || !strings.Contains(body, "CGI header block is too large") {
		t.Fatalf("got %d %q, want 502", code, body)
	}
	if !strings.Contains(g.log.String(), "CGI header block too large") {
		t.Fatalf("no log line says why:\n%s", g.log.String())
	}
	if code, _, _ := get(t, g.base+"/echo"); code != http.StatusOK {
		t.Fatalf("after the refused header the service answered %d", code)
	}
}

func TestCGIHeaderLimits(t *testing.T) {
	read := func(s string) (http.Header, error) {
		var bad []string
		h, err := readCGIHeader(newBufReader(s), func(l string) { bad = append(bad, l) })
		if err == nil && len(bad) > 0 {
			h.Set("X-Bad-Lines", strings.Join(bad, "|"))
		}
		return h, err
	}
	h, err := read("content-type:text/plain\r\nX-Two: a\nnot a header\n\nbody")
	if err != nil || h.Get("Content-Type") != "text/plain" || h.Get("X-Two") != "a" || h.Get("X-Bad-Lines") != "not a header" {
		t.Fatalf("ordinary block: %v %v", h, err)
	}
	for name, block := range map[string]string{
		"long line":   "X-A: " + strings.Repeat("a", maxCGIHeaderLine) + "\n\n",
		"many lines":  strings.Repeat("X-A: a\n", maxCGIHeaderLines+1) + "\n",
		"large block": strings.Repeat("X-A: "+strings.Repeat("a", 4000)+"\n", 20) + "\n",
	} {
		if _, err := read(block); !errors.Is(err, errHeaderTooLarge) {
			t.Errorf("%s: got %v, want errHeaderTooLarge", name, err)
		}
	}
	if _, err := read("X-A: a\n"); err == nil || errors.Is(err, errHeaderTooLarge) {
		t.Errorf("output ending inside the header block: got %v", err)
	}
}

func TestGuestTimingOutAfterItsHeadersAnswers504(t *testing.T) {
	cfg := DefaultConfig("")
	cfg.RequestTimeout = 500 * time.Millisecond
	g := startGuest(t, cfg, nil)
	// Before, the 200 went out with the headers and the client got an
	// empty, aborted reply.
	code, body, _ := get(t, g.base+"/headers-then-hang")
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "did not answer within 500ms") {
		t.Fatalf("got %d %q, want 504", code, body)
	}
}

func TestWAGICommandLineAndVariables(t *testing.T) {
	g := startGuest(t, DefaultConfig(""), nil)
	if code, body, _ := get(t, g.base+"/args?abc=def&x%20y&flag"); code != 200 || body != "/args\nabc=def\nx%20y\nflag" {
		t.Fatalf("argv: %d %q", code, body)
	}
	if code, body, _ := get(t, g.base+"/args"); code != 200 || body != "/args" {
		t.Fatalf("argv without a query: %d %q", code, body)
	}
	port := strings.TrimPrefix(g.base, "http://127.0.0.1:")
	for name, want := range map[string]string{
		"X_MATCHED_ROUTE": "/...",
		"SCRIPT_NAME":     "",
		"PATH_INFO":       "/env",
		"PATH_TRANSLATED": "/env",
		"X_RAW_PATH_INFO": "/env",
		"X_FULL_URL":      "http://127.0.0.1:" + port + "/env?name=X_FULL_URL",
		"AUTH_TYPE":       "",
	} {
		if code, body, _ := get(t, g.base+"/env?name="+name); code != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", name, code, body, want)
		}
	}
}

func TestManifestCommandIsTheArgv(t *testing.T) {
	wasmPath := testutil.BuildWasm(t, "runtimes/wasm/testdata/guest")
	p := New(DefaultConfig(sharedCache))
	t.Cleanup(func() { p.Close(context.Background()) })
	m := testManifest(wasmPath, nil)
	m.Spec.Command = []string{"--verbose", "serve"}
	art, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: m}, func(*messages.PullProgress) {})
	if err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	inst, err := p.Start(context.Background(), runtimes.InstanceSpec{Name: "guest", Manifest: m, Artifact: art, Log: io.Discard,
		Ports: []runtimes.PortBinding{{Name: "http", HostPort: port}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop(context.Background()) })
	if code, body, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/args?abc=def", port)); code != 200 || body != "guest\n--verbose\nserve" {
		t.Fatalf("argv with a manifest command: %d %q", code, body)
	}
}

func TestListenErrorSaysTheCause(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port
	wasmPath := testutil.BuildWasm(t, "runtimes/wasm/testdata/guest")
	p := New(DefaultConfig(sharedCache))
	defer p.Close(context.Background())
	m := testManifest(wasmPath, nil)
	art, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: m}, func(*messages.PullProgress) {})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Start(context.Background(), runtimes.InstanceSpec{Name: "guest", Manifest: m, Artifact: art, Log: io.Discard,
		Ports: []runtimes.PortBinding{{Name: "http", HostPort: port}}})
	if err == nil || !strings.Contains(err.Error(), "another program holds the port") {
		t.Fatalf("port in use: %v", err)
	}
	// A port below 1024 as an unprivileged user; this machine's tests may
	// run as root, where the bind succeeds, so the system's error is made
	// here as net.Listen returns it.
	denied := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
	if msg := listenError(80, denied).Error(); strings.Contains(msg, "another program") || !strings.Contains(msg, "ports below 1024 need privileges") {
		t.Fatalf("permission denied reported as %q", msg)
	}
	if os.Geteuid() != 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:80")
		if err == nil {
			ln.Close()
			t.Fatal("an unprivileged user could listen on port 80; the test's premise does not hold")
		}
		if msg := listenError(80, err).Error(); !strings.Contains(msg, "need privileges") {
			t.Fatalf("real permission error reported as %q", msg)
		}
	}
}

func newBufReader(s string) *bufio.Reader { return bufio.NewReaderSize(strings.NewReader(s), 16<<10) }

func TestCGIEnvWithoutAHostHeader(t *testing.T) {
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET /a%20b?q HTTP/1.0\r\n\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	r.RemoteAddr = "127.0.0.1:5555"
	env := cgiEnv(r, 8080)
	if env["SERVER_NAME"] != "127.0.0.1" || env["X_FULL_URL"] != "http://127.0.0.1:8080/a%20b?q" || env["PATH_INFO"] != "/a b" {
		t.Fatalf("SERVER_NAME %q, X_FULL_URL %q, PATH_INFO %q", env["SERVER_NAME"], env["X_FULL_URL"], env["PATH_INFO"])
	}
}
