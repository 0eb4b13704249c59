package transport

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/gopool"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
	"github.com/fungi-go/fungi/transport/transporttest"
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
	conns := testutil.EnvCount(t, "FUNGI_DRILL_CONNS", 200, 10000)
	uploads := testutil.EnvCount(t, "FUNGI_DRILL_UPLOADS", 50, 10000)

	client, server, gate := trustedPair(t, "access")
	// Every /hold is held open by the service until all have arrived, so
	// the entry really carries them all at once.
	svc := testutil.DrillService(t, conns)
	access.Serve(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) { return svc, nil }, t.Logf)
	entry := transporttest.ForwardLocally(t, client, server.ID(), &messages.AccessHeader{ServiceId: "drill", Port: "http"})
	if _, err := testutil.DrillRequest(entry, "GET", "/warm", nil); err != nil { // connection, identify, pools
		t.Fatal(err)
	}
	base := transporttest.TakeBaseline()

	start := time.Now()
	err := testutil.Parallel(conns, func(i int) error {
		body, err := testutil.DrillRequest(entry, "GET", "/hold", nil)
		if err == nil && body != "held" {
			err = fmt.Errorf("answer %q", body)
		}
		return err
	})
	if err != nil {
		t.Fatalf("concurrent connections: %v", err)
	}
	t.Logf("%d concurrent connections through one entry: 0 errors, %v", conns, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	err = testutil.Parallel(uploads, func(i int) error {
		payload := make([]byte, 1<<20)
		rand.Read(payload)
		sum := sha256.Sum256(payload)
		body, err := testutil.DrillRequest(entry, "PUT", "/upload", payload)
		if err == nil && body != hex.EncodeToString(sum[:]) {
			err = fmt.Errorf("the service got other bytes: checksum %s", body)
		}
		return err
	})
	if err != nil {
		t.Fatalf("concurrent 1 MiB uploads: %v", err)
	}
	t.Logf("%d concurrent 1 MiB uploads: 0 errors, %v", uploads, time.Since(start).Round(time.Millisecond))

	base.BackTo(t, "fds and goroutines of both nodes back to their baseline", func() int { return 0 })
	t.Logf("back to baseline: %d fds, %d goroutines (%d of them waiting in gopool for the next connection)", testutil.FDCount(), runtime.NumGoroutine(), gopool.Idle())
}
