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

func TestParseFunc(t *testing.T) {
	for _, sig := range []string{
		"func()",
		"func() -> bool",
		"func(in: list<borrow<pollable>>) -> list<u32>",
		"func(src: borrow<input-stream>, len: u64) -> result<u64,stream-error>",
		"func(entries: list<tuple<field-name,field-value>>) -> result<fields,header-error>",
		"func(status: result)",
		"func() -> result<_,error-code>",
	} {
		f, err := ParseFunc(sig)
		if err != nil {
			t.Errorf("%s: %v", sig, err)
			continue
		}
		if got := f.Signature(); got != sig {
			t.Errorf("ParseFunc(%q).Signature() = %q", sig, got)
		}
	}
	// Spacing and %-escapes are the writer's; the type is the same.
	f, err := ParseFunc("func( a : list< u8 >, %b: u32 )->option<string>")
	if err != nil || f.Signature() != "func(a: list<u8>, b: u32) -> option<string>" {
		t.Errorf("spaced signature read as %v, %v", f, err)
	}
	for _, bad := range []string{
		"", "func", "func(", "fun()", "func() ->", "func(a u32)", "func(a: )",
		"func(: u32)", "func() -> u32; func()", "func() -> list<u8", "func(a: u32,,)",
		"func() -> $",
	} {
		if f, err := ParseFunc(bad); err == nil {
			t.Errorf("ParseFunc(%q) = %s, want an error", bad, f.Signature())
		}
	}
}

// A signature reads or fails without a panic, and what it reads renders to
// a signature that reads back the same.
func FuzzParseFunc(f *testing.F) {
	for _, s := range []string{"func()", "func(in: list<borrow<pollable>>) -> list<u32>", "func(a: tuple<u8,u8>) -> result<_,e>", "func(a: u8, b: u8)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sig string) {
		fn, err := ParseFunc(sig)
		if err != nil {
			return
		}
		again, err := ParseFunc(fn.Signature())
		if err != nil {
			t.Fatalf("%q read as %q, which does not read: %v", sig, fn.Signature(), err)
		}
		if again.Signature() != fn.Signature() {
			t.Fatalf("%q read as %q, then as %q", sig, fn.Signature(), again.Signature())
		}
	})
}
