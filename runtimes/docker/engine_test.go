package docker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
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

// An engine that accepts calls and never answers them does not hold any
// operation: each ends at the call deadline with an error naming the
// engine and the call.
func TestEngineCallsEndAtTheirDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			io.WriteString(w, "OK")
		case strings.HasSuffix(r.URL.Path, "/images/present:1/json"):
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"Id":"sha256:`+strings.Repeat("a", 64)+`"}`)
		default:
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.CloseClientConnections()
		srv.Close()
	})
	endpoint := "tcp://" + strings.TrimPrefix(srv.URL, "http://")
	p := New(Config{Node: "12D3KooWfakeengine", Endpoint: endpoint, DataRoot: t.TempDir(), EngineCallTimeout: time.Second, StopGrace: time.Second})
	g, err := p.engine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	present := &manifest.Manifest{}
	present.Spec.Runtime = manifest.RuntimeDocker
	present.Spec.Source.Image = "present:1"
	ops := []struct {
		name string
		run  func(ctx context.Context) error
		want string
	}{
		{"fetch", func(ctx context.Context) error {
			_, err := p.Fetch(ctx, runtimes.FetchRequest{Manifest: dockerManifest("absent:1")}, func(*messages.PullProgress) {})
			return err
		}, "inspect image absent:1: the Docker engine at " + endpoint + " did not answer within 1s"},
		{"start", func(ctx context.Context) error {
			_, err := p.Start(ctx, runtimes.InstanceSpec{Name: "web", Manifest: present, Artifact: runtimes.Artifact{Ref: "present:1"}, Log: io.Discard})
			return err
		}, "list the containers: the Docker engine at " + endpoint + " did not answer within 1s"},
		{"remove", func(ctx context.Context) error { return p.Remove(ctx, "web") }, "list the containers: the Docker engine"},
		{"stop", func(ctx context.Context) error { return g.Stop(ctx, "abc", time.Second) }, "inspect container abc: the Docker engine"},
		{"create", func(ctx context.Context) error {
			_, err := g.Create(ctx, Spec{Node: "n", Service: "web", Image: "present:1"})
			return err
		}, "create the container: the Docker engine"},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- op.run(context.Background()) }()
			var err error
			testutil.WaitFor(t, 10*time.Second, op.name+" to end", func() error {
				select {
				case err = <-done:
					return nil
				default:
					return errors.New("still waiting on the engine")
				}
			})
			if err == nil || !strings.Contains(err.Error(), op.want) {
				t.Fatalf("got %v, want %q", err, op.want)
			}
		})
	}
}
