package wasm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fungi-go/fungi/internal/wasmasm"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
)

// coreModule assembles a core module whose functions all have type
// func() -> (): it imports each of imports ("module name" pairs) and
// exports one function, with an empty body, under each of exports.
func coreModule(imports [][2]string, exports []string) []byte {
	bin := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	bin = append(bin, wasmasm.Section(1, 0x01, 0x60, 0x00, 0x00)...)
	if len(imports) > 0 {
		body := []byte{byte(len(imports))}
		for _, imp := range imports {
			body = append(append(append(body, wasmasm.Str(imp[0])...), wasmasm.Str(imp[1])...), 0x00, 0x00)
		}
		bin = append(bin, wasmasm.Section(2, body...)...)
	}
	if len(exports) > 0 {
		bin = append(bin, wasmasm.Section(3, 0x01, 0x00)...)
		body := []byte{byte(len(exports))}
		for _, e := range exports {
			body = append(append(body, wasmasm.Str(e)...), 0x00, byte(len(imports)))
		}
		bin = append(bin, wasmasm.Section(7, body...)...)
		bin = append(bin, wasmasm.Section(10, 0x01, 0x02, 0x00, 0x0b)...)
	}
	return bin
}

// TestModuleRefusalsSayWhatTheFileIs pulls modules fungi cannot run and
// checks each is refused at pull with a message that names what it is
// and lists what it imports that fungi does not provide.
func TestModuleRefusalsSayWhatTheFileIs(t *testing.T) {
	p := New(DefaultConfig(sharedCache))
	t.Cleanup(func() { p.Close(context.Background()) })
	for _, c := range []struct {
		name    string
		imports [][2]string
		exports []string
		want    []string
	}{
		{"Spin SDK module", [][2]string{{"wasi_snapshot_preview1", "fd_write"}, {"spin-config", "get-config"}, {"spin-http", "send-request"}},
			[]string{"_start"}, []string{"a Spin SDK module", "spin-config.get-config, spin-http.send-request", "spin up"}},
		{"preview1 adapter", [][2]string{{"wasi:cli/environment@0.2.0", "get-environment"}, {"wasi:io/streams@0.2.0", "[method]output-stream.write"}},
			[]string{"fd_write", "environ_get"}, []string{"the WASI preview 1 adapter", "wasm-tools component new", "wasi:cli/environment@0.2.0.get-environment"}},
		{"component core module", [][2]string{{"wasi:cli/stdout@0.2.0", "get-stdout"}},
			[]string{"_start"}, []string{"the core module of a component", "wasm-tools component new"}},
		{"other host", [][2]string{{"env", "host_log"}},
			[]string{"_start"}, []string{"imports env.host_log, which fungi does not provide", "WASI preview 1 (wasi_snapshot_preview1) and nothing else"}},
		{"WASI snapshot 0", [][2]string{{"wasi_unstable", "fd_write"}},
			[]string{"_start"}, []string{"wasi_unstable.fd_write", "snapshot 0", "wasm32-wasip1"}},
		{"unknown preview1 function", [][2]string{{"wasi_snapshot_preview1", "fd_teleport"}},
			[]string{"_start"}, []string{"WASI preview 1 functions the engine does not provide (wasi_snapshot_preview1.fd_teleport)"}},
		{"reactor", nil, []string{"_initialize", "add"}, []string{"a WASI reactor", "_initialize, add", "no _start export"}},
	} {
		path := filepath.Join(t.TempDir(), "m.wasm")
		if err := os.WriteFile(path, coreModule(c.imports, c.exports), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: testManifest(path, nil)}, func(*messages.PullProgress) {})
		if err == nil {
			t.Errorf("%s: pulled, want it refused", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: refusal %q does not say %q", c.name, err, w)
			}
		}
	}
	// A module that imports only preview 1 functions is pulled.
	path := filepath.Join(t.TempDir(), "ok.wasm")
	if err := os.WriteFile(path, coreModule([][2]string{{"wasi_snapshot_preview1", "proc_exit"}}, []string{"_start"}), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: testManifest(path, nil)}, func(*messages.PullProgress) {}); err != nil {
		t.Errorf("a preview 1 command module was refused: %v", err)
	}
}
