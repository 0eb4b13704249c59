package wasm

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestIdleConnectionGivesWayToAWaitingOne fills a service's connection
// places with keep-alive connections that have each been answered once
// and now sit idle: a new connection's request is answered 200 because an
// idle one is closed to make room (its client sees EOF), rather than
// waiting out QueueWait and getting 503. A connection that is busy with a
// request is never the one closed.
func TestIdleConnectionGivesWayToAWaitingOne(t *testing.T) {
	cfg := DefaultConfig("")
	cfg.MaxConnections = 2
	cfg.QueueWait = 2 * time.Second
	g := startGuest(t, cfg, nil)
	kept := []*keptAlive{dialService(t, g.base), dialService(t, g.base)}
	for _, c := range kept {
		if resp, _ := c.request(t, "/echo"); resp.StatusCode != http.StatusOK {
			t.Fatalf("a kept connection's first request: %d", resp.StatusCode)
		}
	}
	// The new connections stay open too, so every place stays taken and
	// each new one must wait: a place a closed connection gave back would
	// let it in without reclaiming anything.
	for i := range 2 {
		c := dialService(t, g.base)
		if resp, body := c.request(t, "/echo"); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d on a new connection while the places hold idle ones: %d %q, want 200", i, resp.StatusCode, strings.TrimSpace(body))
		}
	}
	for i, c := range kept {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.r.ReadByte(); err != io.EOF {
			t.Errorf("kept connection %d: read %v, want EOF (closed to make room)", i, err)
		}
	}
}

// TestBusyConnectionIsNotReclaimed holds one of two places with a
// request in progress (its body not yet sent) and the other with an idle
// connection: a new connection gets the idle one's place, and the busy
// request, once its body arrives, is still answered.
func TestBusyConnectionIsNotReclaimed(t *testing.T) {
	cfg := DefaultConfig("")
	cfg.MaxConnections = 2
	cfg.QueueWait = 2 * time.Second
	g := startGuest(t, cfg, nil)
	busy, err := net.DialTimeout("tcp", strings.TrimPrefix(g.base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := io.WriteString(busy, "POST /echo HTTP/1.1\r\nHost: guest\r\nContent-Length: 5\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	idle := dialService(t, g.base)
	if resp, _ := idle.request(t, "/echo"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the idle connection's first request: %d", resp.StatusCode)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Get(g.base + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a new connection while one place is busy and one idle: %d, want 200", resp.StatusCode)
	}
	busy.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(busy, "hello"); err != nil {
		t.Fatal(err)
	}
	answer, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatalf("the busy request was cut: %v", err)
	}
	answer.Body.Close()
	if answer.StatusCode != http.StatusOK {
		t.Errorf("the busy request: %d, want 200", answer.StatusCode)
	}
}
