package wasm

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/fungi-go/fungi/internal/testutil"
)

// serveModule pulls and serves the module built from pkg with cfg's limits.
func serveModule(t *testing.T, pkg string, cfg Config) *running {
	t.Helper()
	r, err := startModule(t, cfg, testutil.BuildWasm(t, pkg), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// onlyReader hides a reader's type, so that the client sends it chunked.
type onlyReader struct{ io.Reader }

// TestWAGIBodyReadAfterHeaders posts to a module that writes its headers
// and the start of its body before it reads the request body: the whole
// body must still reach it, whether it is small, several MiB long, or
// sent chunked with no length.
func TestWAGIBodyReadAfterHeaders(t *testing.T) {
	g := serveModule(t, "runtimes/wasm/testdata/wagibody", DefaultConfig(""))
	for _, c := range []struct {
		name    string
		size    int
		chunked bool
	}{
		{"200 KiB", 200 << 10, false},
		{"6 MiB", 6 << 20, false},
		{"6 MiB chunked", 6 << 20, true},
	} {
		var body io.Reader = bytes.NewReader(bytes.Repeat([]byte("x"), c.size))
		if c.chunked {
			body = onlyReader{body}
		}
		resp, err := http.Post(g.base+"/upload", "application/octet-stream", body)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s: reading the answer: %v (log:\n%s)", c.name, err, g.log)
		}
		want := fmt.Sprintf("reading the request body\n%sread %d bytes, error <nil>\n", strings.Repeat("0123456789abcde\n", 1024), c.size)
		if resp.StatusCode != http.StatusOK || string(got) != want {
			_, last, _ := strings.Cut(string(got), "abcde\nread")
			t.Errorf("POST of %s: %d, ending %q; want 200 and the whole body read; log:\n%s", c.name, resp.StatusCode, last, g.log)
		}
	}
}
