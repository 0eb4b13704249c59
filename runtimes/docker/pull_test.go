package docker

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pushTestImage puts a one-layer image (one small file) into an in-process
// registry under repo:tag, through the registry's own HTTP API.
func pushTestImage(t *testing.T, reg http.Handler, repo, tag string) {
	t.Helper()
	var tarred bytes.Buffer
	tw := tar.NewWriter(&tarred)
	content := []byte("a layer of the stuck-pull test\n")
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write(content)
	tw.Close()
	var layer bytes.Buffer
	gz := gzip.NewWriter(&layer)
	gz.Write(tarred.Bytes())
	gz.Close()
	config, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Cmd": []string{"/hello.txt"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digestOf(tarred.Bytes())}},
	})
	manifestJSON, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.docker.distribution.manifest.v2+json",
		"config":        map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": digestOf(config)},
		"layers":        []map[string]any{{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.Len(), "digest": digestOf(layer.Bytes())}},
	})
	put := func(method, path, contentType string, body []byte) {
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		reg.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
	}
	for _, blob := range [][]byte{config, layer.Bytes()} {
		put(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+digestOf(blob), "application/octet-stream", blob)
	}
	put(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, "application/vnd.docker.distribution.manifest.v2+json", manifestJSON)
}

func dockerManifest(ref string) *manifest.Manifest {
	m := &manifest.Manifest{}
	m.Spec.Runtime = manifest.RuntimeDocker
	m.Spec.Source.Image = ref
	return m
}

// A registry that answers the manifest and then never sends a blob does
// not hold the pull forever: it ends after the no-progress deadline with
// an error that says so, and once the registry sends again the same image
// pulls.
func TestStuckPullEndsWithAClearError(t *testing.T) {
	e := newEngineTest(t)
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	suffix := make([]byte, 4)
	rand.Read(suffix)
	repo := "fungi-test/stuck-" + hex.EncodeToString(suffix)
	pushTestImage(t, reg, repo, "v1")

	var stuck atomic.Bool
	stuck.Store(true)
	var blobsAsked atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") && stuck.Load() {
			blobsAsked.Add(1)
			// The headers promise a blob; its bytes never come.
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(release)
		srv.CloseClientConnections()
		srv.Close()
	})
	ref := strings.TrimPrefix(srv.URL, "http://") + "/" + repo + ":v1"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e.g.cli.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})

	e.p.cfg.PullStallTimeout = 2 * time.Second
	type result struct {
		art runtimes.Artifact
		err error
	}
	fetch := func() result {
		done := make(chan result, 1)
		go func() {
			art, err := e.p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: dockerManifest(ref)}, func(*messages.PullProgress) {})
			done <- result{art, err}
		}()
		select {
		case r := <-done:
			return r
		case <-time.After(2 * time.Minute):
			t.Fatalf("the pull of %s still runs after 2 minutes, with a no-progress deadline of %s", ref, e.p.cfg.PullStallTimeout)
			return result{}
		}
	}
	r := fetch()
	if r.err == nil || !strings.Contains(r.err.Error(), "reported no progress for 2s") || !strings.Contains(r.err.Error(), "pull again") {
		t.Fatalf("got %v, want the stalled pull named", r.err)
	}
	if blobsAsked.Load() == 0 {
		t.Fatal("the engine never asked for a blob: the pull did not stall where the test meant it to")
	}

	stuck.Store(false)
	e.p.cfg.PullStallTimeout = DefaultPullStallTimeout
	r = fetch()
	if r.err != nil {
		t.Fatalf("the pull after the registry recovered: %v", r.err)
	}
	if !strings.HasPrefix(r.art.SHA256, "sha256:") {
		t.Fatalf("artifact %+v", r.art)
	}
}

// An engine whose pull progress line never ends is cut off at the bound,
// with an error, without holding the line in memory.
func TestPullProgressLineIsBounded(t *testing.T) {
	const lineSize = 64 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			io.WriteString(w, "OK")
		case strings.HasSuffix(r.URL.Path, "/images/create"):
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, `{"status":"`)
			chunk := bytes.Repeat([]byte("a"), 32<<10)
			for written := 0; written < lineSize; written += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			io.WriteString(w, "\"}\n")
		case strings.Contains(r.URL.Path, "/images/"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"No such image"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	p := New(Config{Node: "12D3KooWfakeengine", Endpoint: "tcp://" + strings.TrimPrefix(srv.URL, "http://"), DataRoot: t.TempDir()})

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: dockerManifest("example/huge:1")}, func(*messages.PullProgress) {})
	runtime.ReadMemStats(&after)
	want := fmt.Sprintf("longer than %d KiB", maxPullMessage>>10)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error saying %q", err, want)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 8<<20 {
		t.Fatalf("a %d MiB progress line allocated %d bytes", lineSize>>20, allocated)
	}
}
