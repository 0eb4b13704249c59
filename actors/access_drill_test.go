package actors

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport"
)

// The load drill through the real access forwarder actor: two real libp2p
// hosts, the real access protocol, FUNGI_DRILL_CONNS connections held open
// at once through one entry, then FUNGI_DRILL_UPLOADS concurrent 1 MiB
// uploads, no error, and fds and goroutines of both nodes (this process)
// back to their baseline. The full size:
//
//	FUNGI_DRILL_CONNS=1000 FUNGI_DRILL_UPLOADS=200 go test -count=1 -run TestLoadDrill -v ./transport ./actors
func TestLoadDrillThroughForwarder(t *testing.T) {
	conns, uploads := drillEnv(t, "FUNGI_DRILL_CONNS", 200), drillEnv(t, "FUNGI_DRILL_UPLOADS", 50)
	using, serving, servingGate := accessPeers(t)

	// The service holds every /hold request until all arrived, so the
	// entry really carries them at once; /upload answers the SHA-256.
	var arrived sync.WaitGroup
	arrived.Add(conns)
	allIn := make(chan struct{})
	go func() { arrived.Wait(); close(allIn) }()
	mux := http.NewServeMux()
	mux.HandleFunc("/warm", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		select {
		case <-allIn:
		case <-time.After(time.Minute):
			http.Error(w, "not every connection arrived", http.StatusGatewayTimeout)
		}
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		io.Copy(h, io.LimitReader(r.Body, 2<<20))
		io.WriteString(w, hex.EncodeToString(h.Sum(nil)))
	})
	svc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: time.Minute}
	go srv.Serve(svc)
	t.Cleanup(func() { srv.Close() })
	transport.ServeAccess(serving, servingGate, func(peer.ID, *messages.AccessHeader) (string, error) { return svc.Addr().String(), nil }, t.Logf)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &accessRecord{PeerID: serving.ID().String(), ServiceID: "drill", Usage: "web", Ports: []accessPortRecord{{Name: "http"}}}
	system := actor.NewActorSystem()
	fwd := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &accessForwarder{peer: serving.ID(), rec: rec, listeners: []net.Listener{ln}, logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			dial: func(ctx context.Context, p peer.ID, hdr *messages.AccessHeader) (transport.HalfCloser, error) {
				return transport.OpenAccess(ctx, using, p, hdr)
			}}
	}))
	t.Cleanup(func() { system.Root.StopFuture(fwd).Wait() })
	entry := ln.Addr().String()

	if _, err := drillCall(entry, "GET", "/warm", nil); err != nil {
		t.Fatal(err)
	}
	baseFDs, baseGoroutines := drillFDs(), runtime.NumGoroutine()

	start := time.Now()
	failed := drillRun(conns, func() error { _, err := drillCall(entry, "GET", "/hold", nil); return err })
	if failed != nil {
		t.Fatalf("%d concurrent connections: %v", conns, failed)
	}
	t.Logf("%d concurrent connections through the forwarder: 0 errors, %v", conns, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	failed = drillRun(uploads, func() error {
		payload := make([]byte, 1<<20)
		rand.Read(payload)
		sum := sha256.Sum256(payload)
		got, err := drillCall(entry, "PUT", "/upload", payload)
		if err == nil && got != hex.EncodeToString(sum[:]) {
			err = fmt.Errorf("the service got other bytes")
		}
		return err
	})
	if failed != nil {
		t.Fatalf("%d concurrent 1 MiB uploads: %v", uploads, failed)
	}
	t.Logf("%d concurrent 1 MiB uploads through the forwarder: 0 errors, %v", uploads, time.Since(start).Round(time.Millisecond))
	testutil.WaitFor(t, 30*time.Second, "fds and goroutines back to their baseline", func() error {
		fds, gs := drillFDs(), runtime.NumGoroutine()
		if fds > baseFDs || gs > baseGoroutines+5 {
			return fmt.Errorf("%d fds (baseline %d), %d goroutines (baseline %d)", fds, baseFDs, gs, baseGoroutines)
		}
		return nil
	})
}

func drillEnv(t *testing.T, env string, def int) int {
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

func drillFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}

// drillRun runs n calls at once and returns a summary of the failures.
func drillRun(n int, call func() error) error {
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- call() }()
	}
	wg.Wait()
	close(errs)
	count, first := 0, error(nil)
	for err := range errs {
		if err != nil {
			count++
			if first == nil {
				first = err
			}
		}
	}
	if count > 0 {
		return fmt.Errorf("%d of %d failed; first: %w", count, n, first)
	}
	return nil
}

// drillCall makes one HTTP request on a connection of its own.
func drillCall(entry, method, path string, body []byte) (string, error) {
	c, err := net.DialTimeout("tcp", entry, 30*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	req, _ := http.NewRequest(method, "http://drill"+path, bytes.NewReader(body))
	req.Close = true
	if err := req.Write(c); err != nil {
		return "", err
	}
	res, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", res.Status, b)
	}
	return string(b), nil
}
