package docker

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
)

// hugeEngine is a fake engine on 127.0.0.1 whose container inspect answer
// and events message are each a 64 MiB JSON string.
func hugeEngine(t *testing.T) *Guard {
	t.Helper()
	const size = 64 << 20
	writeHuge := func(w http.ResponseWriter, prefix, suffix string) {
		io.WriteString(w, prefix)
		chunk := bytes.Repeat([]byte("a"), 32<<10)
		for written := 0; written < size; written += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		io.WriteString(w, suffix)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			io.WriteString(w, "OK")
		case strings.HasSuffix(r.URL.Path, "/json"):
			w.Header().Set("Content-Type", "application/json")
			writeHuge(w, `{"Id":"`, `"}`)
		case strings.HasSuffix(r.URL.Path, "/events"):
			w.Header().Set("Content-Type", "application/json")
			writeHuge(w, `{"Type":"container","Action":"`, "\"}\n")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	p := New(Config{Node: "12D3KooWfakeengine", Endpoint: "tcp://" + strings.TrimPrefix(srv.URL, "http://"), DataRoot: t.TempDir()})
	g, err := p.engine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// An answer the client reads whole is cut off at its bound, with an error
// saying so, and never held in memory at the size the engine sends.
func TestEngineAnswerIsBounded(t *testing.T) {
	g := hugeEngine(t)
	var err error
	allocated := allocatedBy(func() { _, err = g.Inspect(context.Background(), "abc") })
	if err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Fatalf("got %v, want the answer's bound named", err)
	}
	if allocated > 32<<20 {
		t.Fatalf("a 64 MiB inspect answer allocated %d bytes", allocated)
	}
}

// One events message is bounded; the subscription ends with an error.
func TestEventsMessageIsBounded(t *testing.T) {
	g := hugeEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	allocated := allocatedBy(func() {
		deaths, errs := g.Deaths(ctx, "abc")
		testutil.WaitFor(t, 30*time.Second, "the events stream to end", func() error {
			select {
			case <-deaths:
				return nil
			case err = <-errs:
				return nil
			default:
				return context.DeadlineExceeded
			}
		})
	})
	if err == nil || !strings.Contains(err.Error(), "longer than 64 KiB") {
		t.Fatalf("got %v, want the message's bound named", err)
	}
	if allocated > 32<<20 {
		t.Fatalf("a 64 MiB events message allocated %d bytes", allocated)
	}
}
