package wasm

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/fungi-go/fungi/internal/testutil"
)

// FuzzMergeDataSegments feeds the merge and the bounds check arbitrary
// bytes and checks that they never panic, allocate in proportion to the
// input (and so does wazero once the bounds check passed), the merge never
// refuses a module wazero accepts, and that a merged module compiles whenever its
// input did and leaves memory exactly as the input would. CI runs it for a
// few seconds (go test -run '^$' -fuzz FuzzMergeDataSegments -fuzztime 5s);
// the seed corpus is real modules plus hand-made edge cases.
func FuzzMergeDataSegments(f *testing.F) {
	f.Add(hostileCountModule)
	f.Add(dataModule(1, activeSegments([]dataSegment{{offset: 10, bytes: []byte("AB")}, {offset: 5, bytes: []byte("XXXXXXXX")}})))
	f.Add(dataModule(1, activeSegments([]dataSegment{{offset: 100, bytes: []byte{1, 2}}, {offset: 10, bytes: []byte{9}}, {offset: 60000, bytes: []byte{7}}})))
	f.Add(dataModule(2, activeSegments([]dataSegment{{offset: 0, bytes: nil}, {offset: 70000, bytes: []byte("far")}})))
	f.Add(dataModule(1, []byte{1, 0x01, 3, 'a', 'b', 'c'})) // passive segment
	// Real modules from other toolchains; the large ones would slow every
	// fuzz iteration, so only the small ones seed the corpus.
	for _, name := range []string{"deislabs_wagi__hello.wasm", "deislabs_wagi-examples__hello.gr.wasm"} {
		if bin, err := os.ReadFile(filepath.Join(testutil.RepoRoot(), "..", "shared", "wasm-corpus", "C", name)); err == nil {
			f.Add(bin)
		}
	}

	// A Go module has thousands of segments, the case the merge is for; it
	// is too large to mutate quickly, so it seeds the plain test run only.
	if fuzzing := flag.Lookup("test.fuzz"); fuzzing == nil || fuzzing.Value.String() == "" {
		if bin, err := os.ReadFile(testutil.BuildWasm(f, "runtimes/wasm/testdata/guest")); err == nil {
			f.Add(bin)
		}
	}

	ctx := context.Background()
	// The interpreter validates exactly as the compiler does and starts
	// faster; a small memory limit keeps instantiation cheap.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithMemoryLimitPages(64).WithCloseOnContextDone(true))
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)

	f.Fuzz(func(t *testing.T, in []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out, ok, err := mergeDataSegments(in)
		runtime.ReadMemStats(&after)
		// Segment headers (32 bytes for at least 5 input bytes each), the
		// merged bytes with append's doubling, and the output module.
		if alloc, limit := after.TotalAlloc-before.TotalAlloc, uint64(16*len(in))+1<<20; alloc > limit {
			t.Fatalf("merging a %d-byte input allocated %d bytes (limit %d)", len(in), alloc, limit)
		}
		if ok && len(out) > 2*len(in)+64 {
			t.Fatalf("a %d-byte module merged into %d bytes", len(in), len(out))
		}
		if checkModuleBounds(in) != nil {
			// wazero's decoder would allocate by the impossible counts;
			// this is the input compile refuses before wazero sees it.
			return
		}
		runtime.ReadMemStats(&before)
		inMod, inErr := rt.CompileModule(ctx, in)
		runtime.ReadMemStats(&after)
		if alloc, limit := after.TotalAlloc-before.TotalAlloc, uint64(256*len(in))+64<<20; alloc > limit {
			t.Fatalf("wazero compiling a %d-byte input that passed the bounds check allocated %d bytes (limit %d)", len(in), alloc, limit)
		}
		if inErr != nil {
			return
		}
		defer inMod.Close(ctx)
		if err != nil {
			t.Fatalf("the merge refused a module wazero compiles: %v", err)
		}
		if !ok {
			return
		}
		outMod, outErr := rt.CompileModule(ctx, out)
		if outErr != nil {
			t.Fatalf("the input compiles but the merged module does not: %v", outErr)
		}
		defer outMod.Close(ctx)
		want, wantErr := instantiatedMemory(ctx, rt, inMod)
		got, gotErr := instantiatedMemory(ctx, rt, outMod)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("instantiation differs: input %v, merged %v", wantErr, gotErr)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("the merged module's memory differs from the input's")
		}
	})
}

// instantiatedMemory instantiates compiled without running _start and
// returns a copy of its first memory (nil when it has none).
func instantiatedMemory(ctx context.Context, rt wazero.Runtime, compiled wazero.CompiledModule) ([]byte, error) {
	// A start section may loop; the deadline ends it.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, err
	}
	defer mod.Close(ctx)
	mem := mod.Memory()
	// wazero returns a typed nil for a module without memory.
	if mem == nil || reflect.ValueOf(mem).IsNil() {
		return nil, nil
	}
	b, _ := mem.Read(0, mem.Size())
	return bytes.Clone(b), nil
}
