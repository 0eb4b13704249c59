package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// namesport DIR VAR sets VAR to the port of the names port of the daemon
// of home DIR (its names.addr).
func cmdNamesPort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: namesport DIR VAR")
	}
	data, err := os.ReadFile(filepath.Join(ts.MkAbs(args[0]), "names.addr"))
	ts.Check(err)
	_, port, err := net.SplitHostPort(strings.TrimSpace(string(data)))
	ts.Check(err)
	ts.Setenv(args[1], port)
}

// namehttp URL gets URL as a browser does: a host NAME.localhost is
// loopback without asking any resolver (the request still carries the
// name as its Host).
func cmdNameHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: namehttp URL")
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if host != "localhost" && !strings.HasSuffix(host, ".localhost") {
				return nil, fmt.Errorf("namehttp dials *.localhost only, not %s", host)
			}
			return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
	}}
	resp, err := client.Get(args[0])
	ts.Check(err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprintf(ts.Stdout(), "HTTP %d\n%s", resp.StatusCode, data)
	if neg != (resp.StatusCode >= 400) {
		ts.Fatalf("GET %s answered %s", args[0], resp.Status)
	}
}
