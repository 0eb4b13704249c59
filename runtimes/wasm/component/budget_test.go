package component

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/fungi-go/fungi/internal/wasmasm"
)

// budgetRuntime is a runtime whose linear-memory limit is 32 MiB: a quarter
// of it, 8 MiB, is the host budget every instance gets unless its Config
// sets another.
func budgetRuntime(t *testing.T) wazero.Runtime {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithMemoryLimitPages(512).WithCloseOnContextDone(true))
	t.Cleanup(func() { rt.Close(ctx) })
	return rt
}

const budgetMessage = "the component kept more than 8 MiB of host memory (fields, bodies, streams, handles): its memory limit is wasm.memoryLimitMB"

func compileGuest(t *testing.T, rt wazero.Runtime, g wasmasm.Guest) *Component {
	t.Helper()
	c, err := Compile(context.Background(), rt, g.Bytes())
	if err != nil {
		t.Fatalf("compile the hand-assembled guest: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// serve sends one request to c's handler and returns the response and
// what the handler logged.
func serve(t *testing.T, c *Component, cfg Config) (*httptest.ResponseRecorder, string) {
	t.Helper()
	var log bytes.Buffer
	cfg.Stderr = &log
	w := httptest.NewRecorder()
	c.Handler(cfg).ServeHTTP(w, httptest.NewRequest("GET", "http://guest/", nil))
	return w, log.String()
}

// The review's finding: a command component with 192 KiB of linear memory
// appends 64 KiB header values to one fields 1,024 times, 64 MiB the host
// would keep. The budget (a quarter of the runtime's 32 MiB memory limit)
// traps it after about 8 MiB, the job reports the budget as its error, and
// the process allocates little more than the budget on its way there.
func TestFieldsFloodTrapsOnTheHostBudget(t *testing.T) {
	c := compileGuest(t, budgetRuntime(t), wasmasm.Guest{Flood: wasmasm.Fields, Command: true, Count: 1024, ValueLen: 64 << 10, Pages: 3})
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	code, err := c.Run(context.Background(), Config{})
	goruntime.ReadMemStats(&after)
	// The lifted values and the fields that keep them, plus instantiation:
	// well under the 64 MiB the flood asks for.
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 24<<20 {
		t.Errorf("the run allocated %d MiB on the Go heap; the budget is 8 MiB", allocated>>20)
	}
	var budget *HostMemoryError
	if !errors.As(err, &budget) || budget.Limit != 8<<20 {
		t.Fatalf("run: exit %d, err %v; want the trap of an 8 MiB host budget", code, err)
	}
	if !strings.Contains(err.Error(), budgetMessage) {
		t.Fatalf("the trap says %q; want it to say %q", err, budgetMessage)
	}
}

// A guest that only makes fields, 300,000 handles (under the table's 2^20),
// is trapped by the budget at about 65,000: each handle and its object are
// charged. The request answers 500 and the service log names the budget.
func TestHandleFloodTrapsOnTheHostBudget(t *testing.T) {
	c := compileGuest(t, budgetRuntime(t), wasmasm.Guest{Flood: wasmasm.Handles, Count: 300_000, Pages: 2})
	w, log := serve(t, c, Config{})
	if w.Code != http.StatusInternalServerError || !strings.Contains(log, "the request handler trapped: "+budgetMessage) {
		t.Fatalf("got %d, log %q; want 500 and the budget's trap in the log", w.Code, log)
	}
}

// A guest that writes 2 MiB into each of 8 response bodies it never sends
// makes the host buffer 16 MiB; the budget traps it at 8.
func TestBufferedBodiesTrapOnTheHostBudget(t *testing.T) {
	c := compileGuest(t, budgetRuntime(t), wasmasm.Guest{Flood: wasmasm.Bodies, Count: 8, Writes: 32, ValueLen: 64 << 10, Pages: 3})
	w, log := serve(t, c, Config{})
	if w.Code != http.StatusInternalServerError || !strings.Contains(log, "the request handler trapped: "+budgetMessage) {
		t.Fatalf("got %d, log %q; want 500 and the budget's trap in the log", w.Code, log)
	}
}

// Config.HostMemoryLimit overrides the runtime's limit, and what a guest
// drops is given back: a flood that fits answers as it would without one.
func TestHostBudgetFromConfigAndWithinIt(t *testing.T) {
	rt := budgetRuntime(t)
	flood := compileGuest(t, rt, wasmasm.Guest{Flood: wasmasm.Fields, Command: true, Count: 16, ValueLen: 64 << 10, Pages: 3})
	if code, err := flood.Run(context.Background(), Config{}); err != nil || code != 0 {
		t.Fatalf("a 1 MiB flood under an 8 MiB budget: exit %d, %v; want 0", code, err)
	}
	_, err := flood.Run(context.Background(), Config{HostMemoryLimit: 512 << 10})
	if err == nil || !strings.Contains(err.Error(), "the component kept more than 0.5 MiB of host memory") {
		t.Fatalf("a 1 MiB flood under a 512 KiB budget: %v; want the budget's trap", err)
	}
	answer := compileGuest(t, rt, wasmasm.Guest{Flood: wasmasm.Answer, Pages: 2})
	for range 3 {
		if w, log := serve(t, answer, Config{}); w.Code != http.StatusOK {
			t.Fatalf("the well-behaved guest answered %d (log %q); want 200", w.Code, log)
		}
	}
}

// Fields the guest drops give their bytes and their handle back: a guest
// that makes and drops 10 MiB of fields, 100 KiB at a time, stays within 1.
func TestHostBudgetGivesBackWhatIsDropped(t *testing.T) {
	inst := &instance{}
	inst.budget.limit = 1 << 20
	inst.tables = []handleTable{{budget: &inst.budget}}
	c := &cx{inst: inst}
	for range 100 {
		f := newFields(c)
		if err := f.add("x-a", make([]byte, 100<<10)); err != nil {
			t.Fatal(err)
		}
		h := inst.tables[0].add(handleEntry{obj: f, own: true})
		f.drop()
		inst.tables[0].remove(h)
	}
	if inst.budget.used != 0 {
		t.Fatalf("after 100 fields of 100 KiB made and dropped, %d bytes are still charged", inst.budget.used)
	}
}
