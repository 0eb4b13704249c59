package wit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fungi-go/fungi/internal/testutil"
)

// witDir is the WASI 0.2 WIT shipped beside the repository (its README
// says where it comes from).
func witDir(t *testing.T) string {
	dir := filepath.Join(testutil.RepoRoot(), "..", "shared", "wit", "wasi-0.2.9")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no WASI WIT at %s: %v", dir, err)
	}
	return dir
}

func TestReadWASI(t *testing.T) {
	dir := witDir(t)
	pkg, err := ReadDir(filepath.Join(dir, "io"))
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Name != "wasi:io" || pkg.Version != "0.2.9" {
		t.Errorf("package %s@%s, want wasi:io@0.2.9", pkg.Name, pkg.Version)
	}
	want := map[string]string{
		"[method]pollable.block":                "func()",
		"poll":                                  "func(in: list<borrow<pollable>>) -> list<u32>",
		"[method]output-stream.blocking-splice": "func(src: borrow<input-stream>, len: u64) -> result<u64,stream-error>",
		"[method]input-stream.subscribe":        "func() -> pollable",
	}
	for name, sig := range want {
		var f *Func
		for _, in := range pkg.Interfaces {
			if in.Funcs[name] != nil {
				f = in.Funcs[name]
			}
		}
		if f == nil {
			t.Errorf("%s: not read", name)
			continue
		}
		if got := f.Signature(); got != sig {
			t.Errorf("%s: %s, want %s", name, got, sig)
		}
	}
	http, err := ReadDir(filepath.Join(dir, "http"))
	if err != nil {
		t.Fatal(err)
	}
	types := http.Interfaces["types"]
	for _, name := range []string{"[constructor]fields", "[static]fields.from-list", "[method]fields.get"} {
		if types == nil || types.Funcs[name] == nil {
			t.Errorf("wasi:http/types: %s not read", name)
		}
	}
	// Every WASI package reads.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if _, err := ReadDir(filepath.Join(dir, e.Name())); err != nil {
			t.Error(err)
		}
	}
}

func TestReadRejects(t *testing.T) {
	for name, src := range map[string]string{
		"unclosed interface": "package a:b;\ninterface x {\n f: func();\n",
		"no colon":           "package a:b;\ninterface x { f func(); }",
		"bad char":           "package a:b;\ninterface x { f: func() -> $; }",
		"unclosed comment":   "/* package a:b;",
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "x.wit"), []byte(src), 0o644)
		_, err := ReadDir(dir)
		if err == nil || !strings.Contains(err.Error(), "x.wit") {
			t.Errorf("%s: err %v, want one naming the file", name, err)
		}
	}
}
