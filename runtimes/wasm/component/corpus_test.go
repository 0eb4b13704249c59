package component

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/fungi-go/fungi/internal/testutil"
)

// corpusPath is a binary of ../shared/wasm-corpus; a missing corpus fails
// when FUNGI_REQUIRE_CORPUS=1 (CI) and skips otherwise.
func corpusPath(tb testing.TB, rel string) string {
	tb.Helper()
	p := filepath.Join(testutil.RepoRoot(), "..", "shared", "wasm-corpus", rel)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("FUNGI_REQUIRE_CORPUS") == "1" {
			tb.Fatalf("wasm corpus binary missing: %v", err)
		}
		tb.Skipf("wasm corpus binary missing: %v", err)
	}
	return p
}

var (
	rtOnce sync.Once
	testRT wazero.Runtime
)

// runtime is one wazero runtime for the package's tests, with a compilation
// cache that outlives the test process: the corpus is megabytes of code.
func runtime(tb testing.TB) wazero.Runtime {
	rtOnce.Do(func() {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(dir, "fungi-test", "component-wazero"))
		if err != nil {
			panic(err)
		}
		testRT = wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfig().
			WithCompilationCache(cache).WithCloseOnContextDone(true).WithMemoryLimitPages(4096))
	})
	return testRT
}

func compileCorpus(tb testing.TB, rel string) *Component {
	tb.Helper()
	b, err := os.ReadFile(corpusPath(tb, rel))
	if err != nil {
		tb.Fatal(err)
	}
	c, err := Compile(context.Background(), runtime(tb), b)
	if err != nil {
		tb.Fatalf("compile %s: %v", rel, err)
	}
	tb.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func get(tb testing.TB, url string) (*http.Response, string) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, string(b)
}

func TestHTTPComponentsAnswerAsDocumented(t *testing.T) {
	cases := []struct {
		file, path, body, contentType string
	}{
		{"A/containerd_runwasi__hello_wasi_http.wasm", "/", "Hello, this is your first wasi:http/proxy world!\n", ""},
		{"A/wasmCloud_wash__http_hello_world_rust.wasm", "/", "Hello from Rust!\n", ""},
		{"A/wacker-dev_wacker__http.wasm", "/api_path?hello=world", `{"path":"/api_path","query":{"hello":"world"}}`, "application/json"},
	}
	for _, tc := range cases {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			c := compileCorpus(t, tc.file)
			if c.Kind() != KindHTTP {
				t.Fatalf("Kind() = %v, want %v", c.Kind(), KindHTTP)
			}
			var stderr bytes.Buffer
			srv := httptest.NewServer(c.Handler(Config{Stderr: &stderr}))
			defer srv.Close()
			for i := 0; i < 2; i++ { // a fresh instance each time
				resp, body := get(t, srv.URL+tc.path)
				if resp.StatusCode != http.StatusOK || body != tc.body {
					t.Fatalf("request %d: %d %q, want 200 %q (stderr: %s)", i, resp.StatusCode, body, tc.body, stderr.String())
				}
				if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
					t.Fatalf("Content-Type = %q, want %q", resp.Header.Get("Content-Type"), tc.contentType)
				}
			}
		})
	}
}

func TestHTTPComponentTrapAnswers500AndKeepsServing(t *testing.T) {
	c := compileCorpus(t, "A/ydnar_wasi-http-go__basic.wasm")
	var stderr testutil.SyncBuffer
	srv := httptest.NewServer(c.Handler(Config{Stderr: &stderr}))
	defer srv.Close()
	for i := 0; i < 3; i++ {
		resp, _ := get(t, srv.URL+"/")
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("request %d: status %d, want 500 for a guest that panics", i, resp.StatusCode)
		}
	}
	if !strings.Contains(stderr.String(), "trapped") {
		t.Fatalf("the trap is not in the log: %q", stderr.String())
	}
}

func TestHTTPComponentServesConcurrentRequests(t *testing.T) {
	c := compileCorpus(t, "A/wacker-dev_wacker__http.wasm")
	srv := httptest.NewServer(c.Handler(Config{Stderr: &testutil.SyncBuffer{}}))
	defer srv.Close()
	const n = 8
	errs := make(chan string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := http.Get(srv.URL + "/p?i=" + string(rune('a'+i)))
			if err != nil {
				errs <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if want := `{"path":"/p","query":{"i":"` + string(rune('a'+i)) + `"}}`; string(b) != want {
				errs <- "got " + string(b) + ", want " + want
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestHTTPComponentPastItsDeadlineAnswers504(t *testing.T) {
	c := compileCorpus(t, "A/containerd_runwasi__hello_wasi_http.wasm")
	h := c.Handler(Config{Stderr: &testutil.SyncBuffer{}})
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
	if w.Code != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", w.Code)
	}
	// Control: the same handler answers a live request.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d after the timed-out request, want 200", w.Code)
	}
}
