package wasm

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/wasmasm"
)

// A request whose body the guest never reads, on a keep-alive connection:
// with full duplex on, net/http used to drain that body only after the
// handler returned, which starts its background read of the connection
// and then reads the next request over it: "http: panic serving ...:
// invalid concurrent Body.Read call" (golang/go#68560), and the
// connection's next request got no answer. The handler now closes the
// body before it returns.
func TestAnUnreadBodyLeavesTheKeepAliveConnectionServing(t *testing.T) {
	// A WAGI module (its /args writes without reading stdin) and a
	// component that answers 200 without consuming the request.
	component := filepath.Join(t.TempDir(), "answer.wasm")
	if err := os.WriteFile(component, wasmasm.Guest{Flood: wasmasm.Answer, Pages: 2}.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	served, err := startModule(t, DefaultConfig(""), component, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	unreadBodies(t, "WAGI", serveModule(t, "runtimes/wasm/testdata/guest", DefaultConfig("")))
	unreadBodies(t, "component", served)
}

func unreadBodies(t *testing.T, kind string, g *running) {
	for _, body := range []struct{ name, head, bytes string }{
		{"with a length", "Content-Length: 10\r\n", "0123456789"},
		{"chunked", "Transfer-Encoding: chunked\r\n", "a\r\n0123456789\r\n0\r\n\r\n"},
	} {
		t.Run(kind+" "+body.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(g.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(conn)
			for i, req := range []string{
				"POST /args HTTP/1.1\r\nHost: guest\r\n" + body.head + "\r\n" + body.bytes,
				"POST /args HTTP/1.1\r\nHost: guest\r\n" + body.head + "\r\n" + body.bytes,
				"GET /args HTTP/1.1\r\nHost: guest\r\n\r\n",
			} {
				if _, err := io.WriteString(conn, req); err != nil {
					t.Fatalf("request %d: write: %v", i, err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request %d on the kept connection: %v (log: %s)", i, err, g.log.String())
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("request %d: status %d, body read %v", i, resp.StatusCode, err)
				}
			}
		})
	}
}
