package main

import (
	"fmt"
	"net"
	"net/http"

	"github.com/rogpeppe/go-internal/testscript"
)

// webserverat HOST PORT TEXT serves TEXT over HTTP on HOST:PORT: a second
// program on another address with the same port number as one on
// 127.0.0.1, so a script tells which of the two a connection reached.
func cmdWebServerAt(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: webserverat HOST PORT TEXT")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(args[0], args[1]))
	ts.Check(err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s: %s %s\n", args[2], r.Method, r.URL.Path)
	})}
	go srv.Serve(ln)
	ts.Defer(func() { srv.Close() })
}
