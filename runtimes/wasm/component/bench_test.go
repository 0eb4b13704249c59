package component

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// BenchmarkRequest serves the smallest Rust http component of the corpus,
// a fresh instance per request, next to a native Go handler (the baseline).
// It reports the median per request as p50-ns.
func BenchmarkRequest(b *testing.B) {
	c := compileCorpus(b, "A/containerd_runwasi__hello_wasi_http.wasm")
	handlers := map[string]http.Handler{
		"component": c.Handler(Config{}),
		"native": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "Hello, this is your first wasi:http/proxy world!\n")
		}),
	}
	for _, name := range []string{"native", "component"} {
		h := handlers[name]
		b.Run(name, func(b *testing.B) { benchServe(b, h, http.StatusOK) })
	}
}

// BenchmarkCompile compiles a 2 MB command component cold (a fresh cache)
// and with a warm compilation cache, as a pull and a start would.
func BenchmarkCompile(b *testing.B) {
	bin, err := os.ReadFile(corpusPath(b, "B/bytecodealliance_jco__cli_args.component.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, mode := range []string{"cold", "cached"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			if mode == "cached" {
				warm(b, dir, bin)
			}
			for i := 0; i < b.N; i++ {
				if mode == "cold" {
					dir = b.TempDir()
				}
				cache, err := wazero.NewCompilationCacheWithDir(dir)
				if err != nil {
					b.Fatal(err)
				}
				rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
				c, err := Compile(ctx, rt, bin)
				if err != nil {
					b.Fatal(err)
				}
				_ = c.Close(ctx)
				_ = rt.Close(ctx)
			}
		})
	}
}

func warm(b *testing.B, dir string, bin []byte) {
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	defer rt.Close(ctx)
	if _, err := Compile(ctx, rt, bin); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTrappingRequest serves the TinyGo component of the corpus, whose
// handler traps on every request (a 500), and reports the median as p50-ns:
// a trap should cost about what a normal request does.
func BenchmarkTrappingRequest(b *testing.B) {
	h := compileCorpus(b, "A/ydnar_wasi-http-go__basic.wasm").Handler(Config{})
	benchServe(b, h, http.StatusInternalServerError)
}

// benchServe has h serve GET / b.N times, each answered want, and reports
// the median time per request as p50-ns.
func benchServe(b *testing.B, h http.Handler, want int) {
	req := httptest.NewRequest("GET", "/", nil)
	samples := make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(w, req)
		samples = append(samples, time.Since(start))
		if w.Code != want {
			b.Fatalf("status %d, want %d", w.Code, want)
		}
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[len(samples)/2].Nanoseconds()), "p50-ns")
}
