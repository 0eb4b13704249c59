package transport

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

// The load drill: one access entry between two real libp2p hosts (the real
// access protocol on the serving side, the forwarder's bridge on the using
// side) carries FUNGI_DRILL_CONNS connections open at the same time, then
// FUNGI_DRILL_UPLOADS concurrent 1 MiB uploads, with no error; afterwards
// file descriptors and goroutines of both nodes (this process) return to
// their baseline. CI runs the default size; the full drill is
//
//	FUNGI_DRILL_CONNS=1000 FUNGI_DRILL_UPLOADS=200 go test -count=1 -run TestLoadDrill -v ./transport
func TestLoadDrill(t *testing.T) {
	conns := drillSize(t, "FUNGI_DRILL_CONNS", 200)
	uploads := drillSize(t, "FUNGI_DRILL_UPLOADS", 50)

	client, server, gate := pair(t, "access")
	svc := newDrillService(t, conns)
	ServeAccess(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) { return svc.addr, nil }, t.Logf)
	entry := forwardLocally(t, client, server.ID(), &messages.AccessHeader{ServiceId: "drill", Port: "http"})
	if _, err := drillRequest(entry, "GET", "/warm", nil); err != nil { // connection, identify, pools
		t.Fatal(err)
	}
	base := takeBaseline()

	// Every connection is held open by the service until all have arrived,
	// so the entry really carries them all at once.
	svc.barrier.Add(conns)
	start := time.Now()
	errs := drillParallel(conns, func(i int) error {
		body, err := drillRequest(entry, "GET", "/hold", nil)
		if err == nil && body != "held" {
			err = fmt.Errorf("answer %q", body)
		}
		return err
	})
	reportDrillErrors(t, "concurrent connections", conns, errs)
	t.Logf("%d concurrent connections through one entry: 0 errors, %v", conns, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	errs = drillParallel(uploads, func(i int) error {
		payload := make([]byte, 1<<20)
		rand.Read(payload)
		sum := sha256.Sum256(payload)
		body, err := drillRequest(entry, "PUT", "/upload", payload)
		if err == nil && body != hex.EncodeToString(sum[:]) {
			err = fmt.Errorf("the service got other bytes: checksum %s", body)
		}
		return err
	})
	reportDrillErrors(t, "concurrent 1 MiB uploads", uploads, errs)
	t.Logf("%d concurrent 1 MiB uploads: 0 errors, %v", uploads, time.Since(start).Round(time.Millisecond))

	base.backTo(t, "fds and goroutines of both nodes back to their baseline", func() int { return 0 })
	t.Logf("back to baseline: %d fds, %d goroutines", testutil.FDCount(), runtime.NumGoroutine())
}

func drillSize(t *testing.T, env string, def int) int {
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 10000 {
		t.Fatalf("%s=%q: want a number from 1 to 10000", env, v)
	}
	return n
}

// drillService is an HTTP service on loopback: /hold answers once every
// expected connection arrived, /upload answers the body's SHA-256.
type drillService struct {
	addr    string
	barrier sync.WaitGroup
	release chan struct{}
}

func newDrillService(t *testing.T, conns int) *drillService {
	s := &drillService{release: make(chan struct{})}
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("/warm", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "warm") })
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		s.barrier.Done()
		once.Do(func() { go func() { s.barrier.Wait(); close(s.release) }() })
		select {
		case <-s.release:
			io.WriteString(w, "held")
		case <-time.After(time.Minute):
			http.Error(w, "not every connection arrived", http.StatusGatewayTimeout)
		}
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, io.LimitReader(r.Body, 2<<20)); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Minute}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.addr = ln.Addr().String()
	return s
}

// drillRequest makes one request on a connection of its own.
func drillRequest(entry, method, path string, body []byte) (string, error) {
	c, err := net.DialTimeout("tcp", entry, 30*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	req, _ := http.NewRequest(method, "http://drill"+path, bytes.NewReader(body))
	req.Close = true
	if err := req.Write(c); err != nil {
		return "", fmt.Errorf("send: %w", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return "", fmt.Errorf("answer: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("answer body: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", res.Status, b)
	}
	return string(b), nil
}

func drillParallel(n int, do func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = do(i) }()
	}
	wg.Wait()
	return errs
}

func reportDrillErrors(t *testing.T, what string, n int, errs []error) {
	t.Helper()
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%s: %d of %d failed; first: %v", what, failed, n, first)
	}
}
