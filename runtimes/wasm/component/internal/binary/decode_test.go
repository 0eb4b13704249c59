package binary

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fungi-go/fungi/internal/testutil"
)

func corpusFiles(tb testing.TB) []string {
	tb.Helper()
	dir := filepath.Join(testutil.RepoRoot(), "..", "shared", "wasm-corpus")
	var out []string
	for _, sub := range []string{"A", "B"} {
		m, _ := filepath.Glob(filepath.Join(dir, sub, "*.wasm"))
		out = append(out, m...)
	}
	if len(out) == 0 {
		if os.Getenv("FUNGI_REQUIRE_CORPUS") == "1" {
			tb.Fatalf("wasm corpus missing under %s", dir)
		}
		tb.Skipf("wasm corpus missing under %s", dir)
	}
	return out
}

func TestDecodeCorpus(t *testing.T) {
	for _, f := range corpusFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !IsComponent(b) {
			t.Errorf("%s: IsComponent = false", filepath.Base(f))
		}
		c, err := Decode(b)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		var mods, imports int
		for _, d := range c.Defs {
			switch d.(type) {
			case *CoreModuleDef:
				mods++
			case *ImportDef:
				imports++
			}
		}
		if mods == 0 || imports == 0 {
			t.Errorf("%s: %d core modules, %d imports; want some of each", filepath.Base(f), mods, imports)
		}
	}
}

func TestDecodeRefusesTruncatedAndHugeCounts(t *testing.T) {
	pre := []byte{0, 'a', 's', 'm', 0x0d, 0, 1, 0}
	cases := map[string][]byte{
		"core module preamble": {0, 'a', 's', 'm', 1, 0, 0, 0},
		"truncated section":    append(append([]byte{}, pre...), 7, 10, 1),
		"count beyond bytes":   append(append([]byte{}, pre...), 7, 5, 0xff, 0xff, 0xff, 0xff, 0x0f),
	}
	for name, b := range cases {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if _, err := Decode(pre); err != nil {
		t.Errorf("empty component: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0, 'a', 's', 'm', 0x0d, 0, 1, 0})
	dir := filepath.Join(testutil.RepoRoot(), "..", "shared", "wasm-corpus", "A")
	if b, err := os.ReadFile(filepath.Join(dir, "containerd_runwasi__hello_wasi_http.wasm")); err == nil {
		// Core modules are opaque to this decoder; without them the seed is
		// a few KB of component sections, which is where mutations matter.
		f.Add(withoutCoreModules(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err == nil && c == nil {
			t.Fatal("nil component without an error")
		}
	})
}

// withoutCoreModules drops the outer component's core module sections.
func withoutCoreModules(b []byte) []byte {
	out := append([]byte(nil), b[:8]...)
	r := &reader{b: b, off: 8}
	for r.left() > 0 {
		start := r.off
		id, err := r.byte()
		if err != nil {
			return out
		}
		n, err := r.u32()
		if err != nil {
			return out
		}
		if _, err := r.bytes(n); err != nil {
			return out
		}
		if id != 1 {
			out = append(out, b[start:r.off]...)
		}
	}
	return out
}
