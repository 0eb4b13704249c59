package wasm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
)

// keptAlive is a raw client connection to a service that has had one
// request answered and is now idle, kept alive.
type keptAlive struct {
	net.Conn
	r *bufio.Reader
}

// request sends GET path on c and reads the answer.
func (c *keptAlive) request(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: guest\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func dialService(t *testing.T, base string) *keptAlive {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keptAlive{Conn: c, r: bufio.NewReader(c)}
}

// The server closes keep-alive connections left idle for its idle
// timeout: twenty connections, each answered once and then silent, are
// all closed by the server (the client sees EOF), well before the
// deadline the test gives them.
func TestIdleConnectionsAreClosed(t *testing.T) {
	cfg := DefaultConfig("")
	cfg.IdleTimeout = 200 * time.Millisecond
	g := startGuest(t, cfg, nil)
	conns := make([]*keptAlive, 20)
	for i := range conns {
		conns[i] = dialService(t, g.base)
		if resp, body := conns[i].request(t, "/echo"); resp.StatusCode != 200 || resp.Close {
			t.Fatalf("request %d: %d (close %v) %q", i, resp.StatusCode, resp.Close, body)
		}
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		n, err := c.r.Read(make([]byte, 1))
		if n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("idle connection %d: read %d bytes, %v; want the server to have closed it (EOF)", i, n, err)
		}
	}
}

// Past MaxConnections open at once, a new connection is answered "503
// Service Unavailable" with Retry-After and closed, not held; closing
// one of the open connections frees its place for the next.
func TestConnectionsOverTheCapAreRefused(t *testing.T) {
	cfg := DefaultConfig("")
	cfg.MaxConnections = 4
	cfg.MaxQueued = -1 // no waiting: refused at once
	g := startGuest(t, cfg, nil)
	open := make([]*keptAlive, cfg.MaxConnections)
	for i := range open {
		open[i] = dialService(t, g.base)
		if resp, body := open[i].request(t, "/echo"); resp.StatusCode != 200 {
			t.Fatalf("connection %d within the cap: %d %q", i, resp.StatusCode, body)
		}
	}
	over := dialService(t, g.base)
	resp, body := over.request(t, "/echo")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(body, "limit of 4 connections") {
		t.Fatalf("connection over the cap: %d Retry-After %q %q; want 503 with Retry-After saying the limit",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	over.SetReadDeadline(time.Now().Add(15 * time.Second))
	if n, err := over.r.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("the refused connection was not closed: %d, %v", n, err)
	}
	// The ones within the cap still work.
	if resp, _ := open[0].request(t, "/echo"); resp.StatusCode != 200 {
		t.Fatalf("an open connection got %d after the refusal", resp.StatusCode)
	}
	open[1].Close()
	testutil.WaitFor(t, 10*time.Second, "a place freed by a closed connection", func() error {
		c := dialService(t, g.base)
		defer c.Close()
		if resp, _ := c.request(t, "/echo"); resp.StatusCode != 200 {
			return fmt.Errorf("got %d", resp.StatusCode)
		}
		return nil
	})
}

// A plain HTTP client (Go's, as the forwarder's peers use) reads the 503
// of a full service as an answer, not a connection error.
func TestFullServiceAnswersHTTPClients(t *testing.T) {
	cfg := DefaultConfig("")
	cfg.MaxConnections = 1
	cfg.MaxQueued = -1 // no waiting: an idle connection would give way, and this is about the refusal
	g := startGuest(t, cfg, nil)
	held := dialService(t, g.base)
	if resp, _ := held.request(t, "/echo"); resp.StatusCode != 200 {
		t.Fatalf("first connection: %d", resp.StatusCode)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Post(g.base+"/echo", "text/plain", strings.NewReader(strings.Repeat("x", 4<<10)))
	if err != nil {
		t.Fatalf("a full service should answer, got %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("got %d, want 503", resp.StatusCode)
	}
}
