package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/internal/wasmasm"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
)

// dataModule is a minimal command module (an empty _start) with one
// exported memory of pages pages and the given raw data section body.
func dataModule(pages uint32, dataBody []byte) []byte {
	m := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	m = append(m, wasmasm.Section(1, 1, 0x60, 0, 0)...)                                        // type () -> ()
	m = append(m, wasmasm.Section(3, 1, 0)...)                                                 // one function
	m = append(m, wasmasm.Section(5, binary.AppendUvarint([]byte{1, 0}, uint64(pages))...)...) // memory, min pages
	exports := []byte{2, 6, 'm', 'e', 'm', 'o', 'r', 'y', 2, 0, 6, '_', 's', 't', 'a', 'r', 't', 0, 0}
	m = append(m, wasmasm.Section(7, exports...)...)
	m = append(m, wasmasm.Section(10, 1, 2, 0, 0x0b)...) // body: end
	if dataBody != nil {
		m = append(m, wasmasm.Section(11, dataBody...)...)
	}
	return m
}

// activeSegments encodes a data section body of `i32.const offset` segments.
func activeSegments(segs []dataSegment) []byte {
	body := binary.AppendUvarint(nil, uint64(len(segs)))
	for _, s := range segs {
		body = append(body, 0x00, 0x41)
		body = appendS32(body, int32(s.offset))
		body = append(body, 0x0b)
		body = binary.AppendUvarint(body, uint64(len(s.bytes)))
		body = append(body, s.bytes...)
	}
	return body
}

// hostileCountModule is the 15-byte module of the report: a data section
// that claims 2^32-1 segments and holds none.
var hostileCountModule = []byte{0, 'a', 's', 'm', 1, 0, 0, 0, sectionData, 5, 0xff, 0xff, 0xff, 0xff, 0x0f}

func TestMergeDataSegmentsKeepsMeaning(t *testing.T) {
	segs := []dataSegment{{offset: 100, bytes: []byte{1, 2}}, {offset: 10, bytes: []byte{9}}, {offset: 200000, bytes: []byte{7}}}
	merged, ok := mergeSegments(segs, 1<<20)
	if !ok || len(merged) != 2 {
		t.Fatalf("want the close pair merged and the far one apart, got %d segments (ok %v)", len(merged), ok)
	}
	if merged[0].offset != 10 || len(merged[0].bytes) != 92 || merged[0].bytes[0] != 9 || merged[0].bytes[90] != 1 || merged[0].bytes[91] != 2 {
		t.Fatalf("merged segment wrong: offset %d len %d", merged[0].offset, len(merged[0].bytes))
	}
	for _, b := range merged[0].bytes[1:90] {
		if b != 0 {
			t.Fatal("the gap is not zero-filled")
		}
	}
}

func TestMergeRefusesCountsTheBinaryCannotHold(t *testing.T) {
	// Before the bound, this allocated 2^32-1 segment headers (~137 GB)
	// and the process died with "fatal error: out of memory".
	_, _, err := mergeDataSegments(hostileCountModule)
	if err == nil || !strings.Contains(err.Error(), "claims 4294967295 segments") {
		t.Fatalf("got %v, want a refusal naming the impossible segment count", err)
	}
	// A segment size past the end of its section is refused the same way.
	body := []byte{1, 0x00, 0x41, 0x00, 0x0b, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, _, err := mergeDataSegments(dataModule(1, body)); err == nil || !strings.Contains(err.Error(), "claims 4294967295 bytes") {
		t.Fatalf("oversized segment: got %v", err)
	}
	// So is a section size past the end of the module.
	short := []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, _, err := mergeDataSegments(short); err == nil || !strings.Contains(err.Error(), "only 0 remain") {
		t.Fatalf("oversized section: got %v", err)
	}
}

func TestFetchRefusesHostileModuleWithAClearError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hostile.wasm")
	if err := os.WriteFile(path, hostileCountModule, 0o644); err != nil {
		t.Fatal(err)
	}
	p := New(DefaultConfig(filepath.Join(dir, "cache")))
	defer p.Close(context.Background())
	_, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: testManifest(path, nil)}, func(*messages.PullProgress) {})
	if err == nil || !strings.Contains(err.Error(), "malformed") || !strings.Contains(err.Error(), "claims 4294967295 elements") {
		t.Fatalf("got %v, want the module refused as malformed", err)
	}
}

// memoryAfterInstantiation runs the module's data segments in wazero and
// returns its first page of memory.
func memoryAfterInstantiation(t *testing.T, bin []byte) []byte {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	mod, err := rt.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	page, ok := mod.Memory().Read(0, 65536)
	if !ok {
		t.Fatal("cannot read the first page")
	}
	return bytes.Clone(page)
}

func TestMergeLeavesOverlappingSegmentsInTheirOrder(t *testing.T) {
	// The second segment overwrites the first; sorting them by offset and
	// merging would let the first one win.
	bin := dataModule(1, activeSegments([]dataSegment{
		{offset: 10, bytes: []byte("AB")},
		{offset: 5, bytes: []byte("XXXXXXXX")},
	}))
	out, _, err := mergeDataSegments(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := memoryAfterInstantiation(t, bin)
	if !bytes.Equal(want[5:13], []byte("XXXXXXXX")) {
		t.Fatalf("the test module does not overlap as intended: %q", want[5:13])
	}
	if got := memoryAfterInstantiation(t, out); !bytes.Equal(got, want) {
		t.Fatalf("merging changed memory: got %q at 5..13, want %q", got[5:13], want[5:13])
	}
}

func TestMergeZeroFillIsBoundedByTheModuleSize(t *testing.T) {
	// 4000 one-byte segments 64 KiB apart: joining them all would write
	// 250 MiB of zeros for a module of a few kilobytes.
	var segs []dataSegment
	for i := range 4000 {
		segs = append(segs, dataSegment{offset: uint32(i) * (mergeGap + 1), bytes: []byte{1}})
	}
	bin := dataModule(1, activeSegments(segs))
	out, ok, err := mergeDataSegments(bin)
	if err != nil || !ok {
		t.Fatalf("merge: ok %v err %v", ok, err)
	}
	if len(out) > 2*len(bin)+64 {
		t.Fatalf("a %d-byte module merged into %d bytes; the zero fill must stay within the module's size", len(bin), len(out))
	}
}

func TestModuleBoundsRefuseHostileCountsInEverySection(t *testing.T) {
	huge := []byte{0xff, 0xff, 0xff, 0xff, 0x0f} // 2^32-1
	header := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	module := func(parts ...[]byte) []byte { return bytes.Join(append([][]byte{header}, parts...), nil) }
	cases := map[string][]byte{
		"type count":        module([]byte{1, 5}, huge),
		"import name":       module([]byte{2, 6, 1}, huge),
		"function params":   module([]byte{1, 8, 1, 0x60}, huge, []byte{0}),
		"export count":      module([]byte{7, 5}, huge),
		"locals":            module([]byte{10, 9, 1, 7, 1}, huge, []byte{0x7f}),
		"custom name map":   module([]byte{0, 12, 4, 'n', 'a', 'm', 'e', 1, 5}, huge),
		"data segment size": dataModule(1, append([]byte{1, 0x01}, huge...)),
	}
	for name, bin := range cases {
		t.Run(name, func(t *testing.T) {
			// wazero's decoder, handed any of these, asks for gigabytes.
			if err := checkModuleBounds(bin); err == nil {
				t.Fatalf("% x was accepted", bin)
			}
		})
	}
}

func TestModuleBoundsAcceptRealModules(t *testing.T) {
	paths := []string{testutil.BuildWasm(t, "runtimes/wasm/testdata/guest")}
	corpus, _ := filepath.Glob(filepath.Join(testutil.RepoRoot(), "..", "shared", "wasm-corpus", "C", "*.wasm"))
	paths = append(paths, corpus...)
	for _, path := range paths {
		bin, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkModuleBounds(bin); err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
		}
	}
	if err := checkModuleBounds(dataModule(3, activeSegments([]dataSegment{{offset: 1, bytes: []byte("x")}}))); err != nil {
		t.Errorf("hand-made module: %v", err)
	}
}
