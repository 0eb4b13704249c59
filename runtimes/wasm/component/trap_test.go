package component

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/fungi-go/fungi/internal/wasmasm"
	bin "github.com/fungi-go/fungi/runtimes/wasm/component/internal/binary"
)

// customSections lists the names of a core module's custom sections.
func customSections(tb testing.TB, mod []byte) []string {
	tb.Helper()
	var names []string
	r := &modReader{b: mod, off: 8}
	for r.off < len(r.b) {
		id, _ := r.byte()
		size, err := r.u32()
		if err != nil {
			tb.Fatal(err)
		}
		body := r.b[r.off : r.off+int(size)]
		r.off += int(size)
		if id == 0 {
			name, _ := (&modReader{b: body}).name()
			names = append(names, name)
		}
	}
	return names
}

// A trap used to cost 100-300 ms a request in a component with DWARF,
// which wazero walked for source lines on every trap. The linker drops
// .debug_* sections and keeps the name section, so a trap still names the
// guest's functions.
func TestTrapsCostNoDWARFWalkAndStillNameTheFunction(t *testing.T) {
	raw, err := os.ReadFile(corpusPath(t, "A/ydnar_wasi-http-go__basic.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	dc, err := bin.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	l := &linker{missing: map[string][]string{}}
	if err := l.linkTop(dc, &scope{}); err != nil {
		t.Fatal(err)
	}
	hadDWARF := bytes.Contains(raw, []byte(".debug_info"))
	if !hadDWARF {
		t.Fatal("the corpus component carries no DWARF; the test needs one that does")
	}
	for i, pm := range l.plan {
		for _, name := range customSections(t, pm.bytes) {
			if strings.HasPrefix(name, ".debug_") {
				t.Fatalf("planned core module %d keeps the custom section %s", i, name)
			}
		}
	}
	c := compileCorpus(t, "A/ydnar_wasi-http-go__basic.wasm")
	var stderr bytes.Buffer
	rec := httptest.NewRecorder()
	c.Handler(Config{Stderr: &stderr}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil).WithContext(context.Background()))
	if rec.Code != 500 || !strings.Contains(stderr.String(), "runtime._panic") {
		t.Fatalf("status %d, stderr %q; want 500 and a trap naming the guest's function", rec.Code, stderr.String())
	}
}

func TestAWASI03ComponentIsRefusedAsWhatItIs(t *testing.T) {
	// The name as a WASI 0.3 component carries it in its import section;
	// what follows would not decode as 0.2.
	b := append(append([]byte(nil), wasmasmPreamble...), []byte("\x0a\x20\x01\x00\x1bwasi:cli/run@0.3.0-rc-2026-01\x05\x00")...)
	_, err := Compile(context.Background(), runtime(t), b)
	if err == nil || !strings.Contains(err.Error(), "this is a WASI 0.3 component (it imports wasi:cli/run@0.3.0-rc-2026-01)") || !strings.Contains(err.Error(), "wasm32-wasip2") {
		t.Fatalf("err = %v; want a refusal naming WASI 0.3 and what would run it", err)
	}
}

var wasmasmPreamble = []byte{0, 'a', 's', 'm', 0x0d, 0, 1, 0}

// A composed component (a component instantiated inside another, its
// export lowered into the outer core module: adapter fusion) links and runs.
func TestANestedComponentsExportIsFusedIntoItsUser(t *testing.T) {
	c := compileBytes(t, wasmasm.Nested())
	code, err := c.Run(context.Background(), Config{})
	if err != nil || code != 0 {
		t.Fatalf("exit %d, %v; want 0 (double(21) == 42 across the components)", code, err)
	}
}
