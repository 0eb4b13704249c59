package transporttest

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/gopool"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/transport/access"
)

// ForwardLocally is the using node's half of the access path, as the
// access forwarder does it: a local listener, each connection bridged by
// access.PipeStream to an access stream from an access.Dialer (warm
// streams, early data). It returns the listener's address.
func ForwardLocally(t testing.TB, client host.Host, server peer.ID, hdr *messages.AccessHeader) string {
	d := access.NewDialer(client)
	t.Cleanup(d.Close)
	return testutil.ServeTCP(t, func(c net.Conn) {
		ctx, cancel := context.WithTimeout(access.WithEarlyData(context.Background()), 10*time.Second)
		st, err := d.Open(ctx, server, hdr)
		cancel()
		if err != nil {
			c.Close()
			return
		}
		if as, ok := st.(*access.Stream); ok {
			access.PipeStream(c.(*net.TCPConn), as, func(error) { c.Close() }, nil)
			return
		}
		access.Pipe(c.(*net.TCPConn), st)
	})
}

// Baseline is what a test's process holds before the load: it is back to
// it when fds are no more than before plus what the test itself keeps,
// and goroutines are within a little of before.
type Baseline struct{ FDs, Goroutines int }

// TakeBaseline is what the process holds now.
func TakeBaseline() Baseline {
	return Baseline{testutil.FDCount(), runtime.NumGoroutine() - gopool.Idle()}
}

// BackTo waits until the process is back to b, with keptFDs more fds.
func (b Baseline) BackTo(t testing.TB, what string, keptFDs func() int) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, func() error {
		// Goroutines waiting in gopool for the next connection's task are
		// kept on purpose, as the streams are.
		fds, gs := testutil.FDCount(), runtime.NumGoroutine()-gopool.Idle()
		// A few goroutines come and go; a peer also holds one for each
		// stream the other's Dialer keeps for its next connections.
		if fds > b.FDs+keptFDs() || gs > b.Goroutines+5+access.PooledStreams {
			return fmt.Errorf("%d fds (baseline %d, %d kept by the test), %d goroutines (baseline %d)", fds, b.FDs, keptFDs(), gs, b.Goroutines)
		}
		return nil
	})
}
