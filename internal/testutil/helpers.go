package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
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
	Accept(ln, serve)
	return ln.Addr().String()
}

// Accept takes ln's connections until ln is closed, in a goroutine of its
// own, and runs serve for each connection in a goroutine of its own.
func Accept(ln net.Listener, serve func(net.Conn)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
}

// ServeEcho is a TCP echo server on a free loopback port until the test
// ends: it sends back what it reads and half-closes at EOF. It returns the
// server's address.
func ServeEcho(tb testing.TB) string {
	tb.Helper()
	return ServeTCP(tb, func(c net.Conn) { io.Copy(c, c); c.(*net.TCPConn).CloseWrite(); c.Close() })
}

// ServeSink is a TCP server on a free loopback port until the test ends
// that reads each connection to EOF and then answers one byte, so a
// sender knows every byte arrived. It returns the server's address.
func ServeSink(tb testing.TB) string {
	tb.Helper()
	return ServeTCP(tb, func(c net.Conn) { io.Copy(io.Discard, c); c.Write([]byte{1}); c.Close() })
}

// EchoOnce opens a connection to the echo server at addr and sends one
// byte there and back, all within within.
func EchoOnce(addr string, within time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, within)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(within))
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	_, err = io.ReadFull(c, make([]byte, 1))
	return err
}

// SendToSink sends size bytes to the sink at addr (see ServeSink),
// half-closes, and waits for the sink's byte that says it read them all.
func SendToSink(addr string, size int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	buf := make([]byte, 256<<10)
	for sent := 0; sent < size; sent += len(buf) {
		if _, err := c.Write(buf[:min(len(buf), size-sent)]); err != nil {
			return err
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return fmt.Errorf("no answer from the sink: %v", err)
	}
	return nil
}

// HTTPDo sends req with client and returns the answer's status and body
// (its first MiB: a test's answers are small, a runaway one is cut).
func HTTPDo(client *http.Client, req *http.Request) (status int, body string, err error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(data), err
}

// RecvAll receives from a gRPC server stream until it ends and returns
// every message; when the stream fails, it returns what came and the
// error.
func RecvAll[T any](stream interface{ Recv() (T, error) }) ([]T, error) {
	var out []T
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

// DirNames lists the names in dir, sorted (as os.ReadDir sorts them), for
// a test to compare with what must be there; an unreadable dir fails it.
func DirNames(tb testing.TB, dir string) []string {
	tb.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
