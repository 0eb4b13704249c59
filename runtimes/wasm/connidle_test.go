package wasm

import (
	"bufio"
	"fmt"
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
	var fresh []*keptAlive
	for i := range 2 {
		c := dialService(t, g.base)
		if resp, body := c.request(t, "/echo"); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d on a new connection while the places hold idle ones: %d %q, want 200", i, resp.StatusCode, strings.TrimSpace(body))
		}
		fresh = append(fresh, c)
	}
	closed := func(c *keptAlive) error {
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, err := c.r.ReadByte(); err != io.EOF {
			return fmt.Errorf("read %v, want EOF (closed to make room)", err)
		}
		return nil
	}
	if err := closed(kept[0]); err != nil {
		t.Errorf("the connection idle the longest: %v", err)
	}
	// The second place comes from the other kept connection, idle the
	// longest then, or from the first new one: the server may mark it
	// idle only after the second has begun to wait, and a connection that
	// goes idle while one waits gives its place up at once. Either way an
	// idle connection made room.
	if err := closed(kept[1]); err != nil {
		if err2 := closed(fresh[0]); err2 != nil {
			t.Errorf("no idle connection made room for the second new one: kept connection 1: %v; first new one: %v", err, err2)
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
