package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

// aheadRig is an access server in front of an echo service that counts
// the connections it holds open, and a pool of streams opened ahead to it.
type aheadRig struct {
	ahead   *AccessAhead
	refuse  atomic.Bool // the resolver refuses from now on
	asked   atomic.Int32
	holding atomic.Int32 // service connections open
}

func newAheadRig(t *testing.T, size int, maxAge time.Duration) *aheadRig {
	client, server, gate := pair(t, "access")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &aheadRig{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.holding.Add(1)
			go func() { io.Copy(c, c); c.Close(); r.holding.Add(-1) }()
		}
	}()
	ServeAccess(server, gate, func(peer.ID, *messages.AccessHeader) (string, error) {
		r.asked.Add(1)
		if r.refuse.Load() {
			return "", errors.New("echo is stopped")
		}
		return ln.Addr().String(), nil
	}, t.Logf)
	hdr := &messages.AccessHeader{ServiceId: "echo", Port: "tcp"}
	r.ahead = NewAccessAhead(size, maxAge, func(ctx context.Context) (HalfCloser, error) {
		return OpenAccess(WithEarlyData(ctx), client, server.ID(), hdr)
	})
	t.Cleanup(r.ahead.Close)
	return r
}

func (r *aheadRig) take(t *testing.T) HalfCloser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.ahead.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (r *aheadRig) readyStreams() int {
	r.ahead.mu.Lock()
	defer r.ahead.mu.Unlock()
	return len(r.ahead.ready)
}

func echoThrough(t *testing.T, s HalfCloser, msg string) {
	t.Helper()
	if _, err := s.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(msg))
	if _, err := io.ReadFull(s, back); err != nil || string(back) != msg {
		t.Fatalf("echo: %q %v", back, err)
	}
}

// A connection after the first finds a stream the peer already admitted:
// it works even though the peer now refuses every new stream, so it did
// not wait for a stream open, the admission or the service's dial.
func TestAccessAheadServesFromAnAdmittedStream(t *testing.T) {
	r := newAheadRig(t, 1, time.Minute)
	first := r.take(t)
	defer first.Close()
	echoThrough(t, first, "first")
	testutil.WaitFor(t, 10*time.Second, "a stream opened ahead", func() error {
		if n := r.readyStreams(); n != 1 {
			return fmt.Errorf("%d streams ready", n)
		}
		return nil
	})
	r.refuse.Store(true)
	second := r.take(t)
	defer second.Close()
	echoThrough(t, second, "second") // a stream opened now would be refused
}

// A refusal is never kept ahead: the next connection asks the peer again
// and gets the refusal itself, with its reason.
func TestAccessAheadKeepsNoRefusal(t *testing.T) {
	r := newAheadRig(t, 1, time.Minute)
	first := r.take(t)
	defer first.Close()
	echoThrough(t, first, "first")
	testutil.WaitFor(t, 10*time.Second, "a stream opened ahead", func() error {
		if n := r.readyStreams(); n != 1 {
			return fmt.Errorf("%d streams ready", n)
		}
		return nil
	})
	r.refuse.Store(true)
	second := r.take(t) // admitted ahead; its replacement is refused
	defer second.Close()
	testutil.WaitFor(t, 10*time.Second, "the stream opened ahead to be refused", func() error {
		r.ahead.mu.Lock()
		defer r.ahead.mu.Unlock()
		if r.asked.Load() < 3 || r.ahead.filling > 0 {
			return fmt.Errorf("asked %d times, %d opening", r.asked.Load(), r.ahead.filling)
		}
		return nil
	})
	if n := r.readyStreams(); n != 0 {
		t.Fatalf("%d refused streams kept ahead", n)
	}
	third := r.take(t)
	defer third.Close()
	if _, err := third.Read(make([]byte, 1)); err == nil || !errors.As(err, new(*RemoteError)) {
		t.Fatalf("read of a refused stream: %v", err)
	}
}

// A stream nobody took is dropped at its age bound, and Close drops the
// rest: the service is left holding no connection either way.
func TestAccessAheadLetsGoOfTheService(t *testing.T) {
	for _, tc := range []struct {
		name   string
		maxAge time.Duration
		close  bool
	}{{"age", 100 * time.Millisecond, false}, {"close", time.Minute, true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newAheadRig(t, 2, tc.maxAge)
			s := r.take(t)
			echoThrough(t, s, "x")
			s.Close()
			if tc.close {
				testutil.WaitFor(t, 10*time.Second, "two streams opened ahead", func() error {
					if n := r.readyStreams(); n != 2 {
						return fmt.Errorf("%d ready", n)
					}
					return nil
				})
				r.ahead.Close()
			}
			testutil.WaitFor(t, 10*time.Second, "the service to hold no connection", func() error {
				if n := r.holding.Load(); n != 0 || r.readyStreams() != 0 {
					return fmt.Errorf("service holds %d connections, %d streams ready", n, r.readyStreams())
				}
				return nil
			})
		})
	}
}
