package main

import (
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/internal/wasmasm"
)

// wasmguest KIND [PORT] FILE writes a hand-assembled component to FILE:
// "echo PORT", a TCP echo server over wasi:sockets listening on PORT; or
// "http-sockets", an HTTP handler that imports wasi:sockets and never uses
// them.
func cmdWasmGuest(ts *testscript.TestScript, neg bool, args []string) {
	var b []byte
	switch {
	case len(args) == 3 && args[0] == "echo":
		port, err := strconv.Atoi(args[1])
		if err != nil || port < 1 || port > 65535 {
			ts.Fatalf("wasmguest echo: bad port %q", args[1])
		}
		b = wasmasm.TCPEcho(uint16(port))
	case len(args) == 2 && args[0] == "http-sockets":
		b = wasmasm.HTTPWithUnusedSockets()
	default:
		ts.Fatalf("usage: wasmguest echo PORT FILE | wasmguest http-sockets FILE")
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[len(args)-1]), b, 0o644))
}

// tcpecho ADDR TEXT connects to ADDR (trying again for up to 30 seconds:
// a guest listens once it has run its first steps, an access port once
// the peer is reached), sends TEXT and checks the same bytes come back.
func cmdTCPEcho(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: tcpecho ADDR TEXT")
	}
	deadline := time.Now().Add(30 * time.Second)
	err := testutil.Poll(30*time.Second, func() error {
		got, err := echoOnce(args[0], args[1], deadline)
		if err == nil && got != args[1] {
			err = &echoMismatch{got}
		}
		if err == nil && neg {
			ts.Fatalf("%s echoed %q", args[0], got)
		}
		if neg {
			return nil // no echo, as wanted
		}
		return err
	})
	if err != nil {
		ts.Fatalf("no echo from %s before the deadline: %v", args[0], err)
	}
}

type echoMismatch struct{ got string }

func (e *echoMismatch) Error() string { return "echoed " + strconv.Quote(e.got) }

func echoOnce(addr, text string, deadline time.Time) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, text); err != nil {
		return "", err
	}
	got := make([]byte, len(text))
	n, err := io.ReadFull(conn, got)
	return string(got[:n]), err
}
