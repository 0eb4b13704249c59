package testutil

import (
	"bytes"
	"net"
	"os"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that goroutines may write while a test
// reads it (a daemon's or a handler's log).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreePort is a TCP port on 127.0.0.1 that was free a moment ago: the
// kernel picked it for a listener that is closed again. Another process
// may take it before the test does; tests that can, listen on port 0
// themselves.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// FDCount is the number of open file descriptors of this process, or -1
// where /proc/self/fd cannot be read (not Linux).
func FDCount() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// ServeTCP listens on a free port of 127.0.0.1 and runs serve for each
// connection in a goroutine of its own until the test ends; it returns the
// listener's address.
func ServeTCP(tb testing.TB, serve func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}
