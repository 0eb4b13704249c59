package access

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// recordingEnd is the stream end of a bridge: it records every write, in
// order, and whether its writing side was closed.
type recordingEnd struct {
	mu     sync.Mutex
	writes [][]byte
	closed bool
	wrote  chan struct{} // a write or the close happened
	eof    chan struct{} // Read blocks until Close
}

func newRecordingEnd() *recordingEnd {
	return &recordingEnd{wrote: make(chan struct{}, 16), eof: make(chan struct{})}
}

func (r *recordingEnd) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.writes = append(r.writes, bytes.Clone(b))
	r.mu.Unlock()
	r.wrote <- struct{}{}
	return len(b), nil
}

func (r *recordingEnd) CloseWrite() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.wrote <- struct{}{}
	return nil
}

func (r *recordingEnd) Read([]byte) (int, error) { <-r.eof; return 0, net.ErrClosed }

func (r *recordingEnd) Close() error {
	select {
	case <-r.eof:
	default:
		close(r.eof)
	}
	return nil
}

func (r *recordingEnd) snapshot() ([][]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes, r.closed
}

// serviceConn is a loopback connection: the bridge's end and the
// service's.
func serviceConn(t *testing.T) (bridge *net.TCPConn, service net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s
}

// waitWrites waits until end holds n writes, or fails.
func waitWrites(t *testing.T, end *recordingEnd, n int) [][]byte {
	t.Helper()
	return waitEnd(t, end, func(w [][]byte, _ bool) bool { return len(w) >= n })
}

// waitClosed waits until end's writing side is closed, or fails.
func waitClosed(t *testing.T, end *recordingEnd) {
	t.Helper()
	waitEnd(t, end, func(_ [][]byte, closed bool) bool { return closed })
}

func waitEnd(t *testing.T, end *recordingEnd, done func([][]byte, bool) bool) [][]byte {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w, closed := end.snapshot()
		if done(w, closed) {
			return w
		}
		select {
		case <-end.wrote:
		case <-deadline:
			t.Fatalf("after 10s: writes %q, closed %v", w, closed)
		}
	}
}

// The reply that admits a connection travels in one write with the
// service's first bytes, and alone when the service says nothing in time.
func TestAdmittedReplyRidesTheServicesFirstBytes(t *testing.T) {
	t.Run("service speaks", func(t *testing.T) {
		conn, service := serviceConn(t)
		end := newRecordingEnd()
		// The banner, not the wait, sends it.
		go (&pipe{a: conn, b: end, reply: admittedReply, replyWait: time.Minute}).run(nil)
		service.Write([]byte("banner"))
		w := waitWrites(t, end, 1)
		if want := append(bytes.Clone(admittedReply), "banner"...); !bytes.Equal(w[0], want) {
			t.Fatalf("first write %q, want the reply and the banner in one: %q", w[0], want)
		}
		end.Close()
	})
	t.Run("service silent", func(t *testing.T) {
		conn, service := serviceConn(t)
		end := newRecordingEnd()
		go (&pipe{a: conn, b: end, reply: admittedReply, replyWait: replyWait}).run(nil)
		w := waitWrites(t, end, 1)
		if !bytes.Equal(w[0], admittedReply) {
			t.Fatalf("first write %q, want the reply alone %q", w[0], admittedReply)
		}
		service.Write([]byte("later"))
		if w := waitWrites(t, end, 2); string(w[1]) != "later" {
			t.Fatalf("second write %q, want the service's bytes", w[1])
		}
		end.Close()
	})
	t.Run("service closes", func(t *testing.T) {
		conn, service := serviceConn(t)
		end := newRecordingEnd()
		go (&pipe{a: conn, b: end, reply: admittedReply, replyWait: time.Minute}).run(nil)
		service.Close()
		waitClosed(t, end)
		w, _ := end.snapshot()
		if len(w) != 1 || !bytes.Equal(w[0], admittedReply) {
			t.Fatalf("writes before the close %q, want the reply", w)
		}
		end.Close()
	})
}
