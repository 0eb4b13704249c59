package component

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/fungi-go/fungi/internal/wasmasm"
)

func str(s string) []byte { return appendName(nil, s) }

// importing builds a component that imports iface as an instance exporting
// one function fn: () -> ().
func importing(iface, fn string) []byte {
	var ty []byte
	ty = append(ty, 1, 0x42, 2)             // one type: an instance type with 2 declarations
	ty = append(ty, 0x01, 0x40, 0, 0x01, 0) // type 0: func () -> ()
	ty = append(ty, 0x04, 0x00)             // export
	ty = append(ty, str(fn)...)
	ty = append(ty, 0x01, 0) // func of type 0
	var im []byte
	im = append(im, 1, 0x00)
	im = append(im, str(iface)...)
	im = append(im, 0x05, 0) // instance of type 0
	b := append([]byte(nil), wasmasm.Preamble...)
	b = append(b, wasmasm.Section(7, ty...)...)
	return append(b, wasmasm.Section(10, im...)...)
}

func TestCompileRefusesMissingImportsWithTheirList(t *testing.T) {
	for _, tc := range []struct{ iface, fn, want string }{
		{"wasi:sockets/tcp@0.2.0", "connect", "wasi:sockets/tcp@0.2.0: connect"},
		{"wasi:cli/environment@0.2.3", "get-everything", "wasi:cli/environment@0.2.3: get-everything"},
		{"wasi:cli/environment@0.3.0", "get-environment", "wasi:cli/environment@0.3.0: get-environment"},
	} {
		_, err := Compile(context.Background(), runtime(t), importing(tc.iface, tc.fn))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "does not provide") {
			t.Errorf("import %s %s: error %v, want one listing %q", tc.iface, tc.fn, err, tc.want)
		}
	}
	// Control: a function fungi provides, in any 0.2.x version, links; the
	// component is then refused only because it exports nothing.
	_, err := Compile(context.Background(), runtime(t), importing("wasi:cli/environment@0.2.3", "get-environment"))
	if err == nil || strings.Contains(err.Error(), "does not provide") || !strings.Contains(err.Error(), "exports nothing") {
		t.Errorf("provided import: %v, want only the exports refusal", err)
	}
}

func TestCompileRefusesMalformedAndCoreModules(t *testing.T) {
	bin, err := os.ReadFile(corpusPath(t, "A/containerd_runwasi__hello_wasi_http.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"truncated":       bin[:len(bin)/2],
		"bad section":     append(append([]byte(nil), wasmasm.Preamble...), 0x0e, 1, 0),
		"core module":     {0, 'a', 's', 'm', 1, 0, 0, 0},
		"empty":           nil,
		"huge count":      append(append([]byte(nil), wasmasm.Preamble...), wasmasm.Section(7, 0xff, 0xff, 0xff, 0xff, 0x0f)...),
		"exports nothing": wasmasm.Preamble,
	} {
		_, err := Compile(context.Background(), runtime(t), b)
		if err == nil {
			t.Errorf("%s: compiled", name)
			continue
		}
		if name != "exports nothing" && !strings.Contains(err.Error(), "malformed component") {
			t.Errorf("%s: %v, want it called malformed", name, err)
		}
	}
	if IsComponent(bin[:7]) || !IsComponent(bin) {
		t.Error("IsComponent wrong on the wasmasm.Preamble")
	}
	// The runtime still compiles a good component after the refusals.
	if _, err := Compile(context.Background(), runtime(t), bin); err != nil {
		t.Fatalf("good component after malformed ones: %v", err)
	}
}

func TestInterfacesListsWhatLinks(t *testing.T) {
	got := strings.Join(Interfaces(), " ")
	for _, want := range []string{"wasi:http/types@0.2.x", "wasi:cli/run", "wasi:filesystem/preopens@0.2.x", "wasi:io/streams@0.2.x"} {
		if want == "wasi:cli/run" {
			if strings.Contains(got, want) {
				t.Errorf("Interfaces() lists %s, an export, not an import fungi serves", want)
			}
			continue
		}
		if !strings.Contains(got, want) {
			t.Errorf("Interfaces() = %s; missing %s", got, want)
		}
	}
}

func TestCompileRunsTheCoreModuleCheck(t *testing.T) {
	var checked int
	refuse := WithCoreModuleCheck(func(m []byte) error {
		checked++
		if len(m) > 100 {
			return errTooBig
		}
		return nil
	})
	_, err := Compile(context.Background(), runtime(t), escapeGuest(), refuse)
	if err == nil || !strings.Contains(err.Error(), "malformed component: core module") || checked == 0 {
		t.Fatalf("err %v after %d checks; want the check's refusal", err, checked)
	}
	// Control: a check that passes everything lets the same component compile.
	c, err := Compile(context.Background(), runtime(t), escapeGuest(), WithCoreModuleCheck(func([]byte) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close(context.Background())
}

var errTooBig = errors.New("too big")
