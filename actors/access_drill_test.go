package actors

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/gopool"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
)

// The load drill through the real access forwarder actor: two real libp2p
// hosts, the real access protocol, FUNGI_DRILL_CONNS connections held open
// at once through one entry, then FUNGI_DRILL_UPLOADS concurrent 1 MiB
// uploads, no error, and fds and goroutines of both nodes (this process)
// back to their baseline. The full size:
//
//	FUNGI_DRILL_CONNS=1000 FUNGI_DRILL_UPLOADS=200 go test -count=1 -run TestLoadDrill -v ./transport ./actors
func TestLoadDrillThroughForwarder(t *testing.T) {
	conns, uploads := testutil.EnvCount(t, "FUNGI_DRILL_CONNS", 200, 10000), testutil.EnvCount(t, "FUNGI_DRILL_UPLOADS", 50, 10000)
	using, serving, servingGate := accessPeers(t)

	// The service holds every /hold request until all arrived, so the
	// entry really carries them at once; /upload answers the SHA-256.
	svc := testutil.DrillService(t, conns)
	access.Serve(serving, servingGate, func(peer.ID, *messages.AccessHeader) (string, error) { return svc, nil }, t.Logf)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &accessRecord{PeerID: serving.ID().String(), ServiceID: "drill", Usage: "web", Ports: []accessPortRecord{{Name: "http"}}}
	system := actor.NewActorSystem()
	fwd := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return &accessForwarder{peer: serving.ID(), rec: rec, listeners: []net.Listener{ln}, logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			dial: func(ctx context.Context, p peer.ID, hdr *messages.AccessHeader) (access.HalfCloser, error) {
				return access.Open(ctx, using, p, hdr)
			}}
	}))
	t.Cleanup(func() { system.Root.StopFuture(fwd).Wait() })
	entry := ln.Addr().String()

	if _, err := testutil.DrillRequest(entry, "GET", "/warm", nil); err != nil {
		t.Fatal(err)
	}
	baseFDs, baseGoroutines := testutil.FDCount(), runtime.NumGoroutine()-gopool.Idle()

	start := time.Now()
	failed := testutil.Parallel(conns, func(int) error { _, err := testutil.DrillRequest(entry, "GET", "/hold", nil); return err })
	if failed != nil {
		t.Fatalf("%d concurrent connections: %v", conns, failed)
	}
	t.Logf("%d concurrent connections through the forwarder: 0 errors, %v", conns, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	failed = testutil.Parallel(uploads, func(int) error {
		payload := make([]byte, 1<<20)
		rand.Read(payload)
		sum := sha256.Sum256(payload)
		got, err := testutil.DrillRequest(entry, "PUT", "/upload", payload)
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
		fds, gs := testutil.FDCount(), runtime.NumGoroutine()-gopool.Idle() // pooled goroutines wait on purpose
		if fds > baseFDs || gs > baseGoroutines+5 {
			return fmt.Errorf("%d fds (baseline %d), %d goroutines (baseline %d)", fds, baseFDs, gs, baseGoroutines)
		}
		return nil
	})
}
