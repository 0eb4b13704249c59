package component

import (
	"context"
	"testing"

	"github.com/fungi-go/fungi/internal/wasmasm"
)

// resourceGuest is a hand-made command component that defines its own
// resource (rep i32, with a destructor) and, through the canonical built-ins
// resource.new, resource.rep and resource.drop, checks that a handle keeps
// its representation and that dropping it runs the destructor with it.
func resourceGuest() []byte {
	header := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	dtorMod := wasmasm.Cat(header,
		wasmasm.Section(1, wasmasm.Vec(2, []byte{0x60, 1, 0x7f, 0}, []byte{0x60, 0, 1, 0x7f})...),
		wasmasm.Section(3, wasmasm.Vec(2, []byte{0}, []byte{1})...),
		wasmasm.Section(6, wasmasm.Vec(1, wasmasm.Cat([]byte{0x7f, 0x01}, wasmasm.I32(0), []byte{0x0b}))...),
		wasmasm.Section(7, wasmasm.Vec(2, wasmasm.Cat(str("dtor"), []byte{0x00, 0}), wasmasm.Cat(str("last"), []byte{0x00, 1}))...),
		wasmasm.Section(10, wasmasm.Vec(2,
			wasmasm.FuncBody([]byte{0}, []byte{0x20, 0, 0x24, 0, 0x0b}), // global = rep
			wasmasm.FuncBody([]byte{0}, []byte{0x23, 0, 0x0b}))...),
	)
	fail := wasmasm.Cat([]byte{0x04, 0x40}, wasmasm.I32(1), []byte{0x0f, 0x0b})
	code := wasmasm.Cat(
		wasmasm.I32(42), []byte{0x10, 0, 0x21, 0}, // h = resource.new(42)
		[]byte{0x20, 0, 0x10, 1}, wasmasm.I32(42), []byte{0x47}, fail, // rep(h) != 42
		[]byte{0x20, 0, 0x10, 2},                             // resource.drop(h)
		[]byte{0x10, 3}, wasmasm.I32(42), []byte{0x47}, fail, // the destructor did not see 42
		wasmasm.I32(0), []byte{0x0b},
	)
	mainMod := wasmasm.Cat(header,
		wasmasm.Section(1, wasmasm.Vec(3, []byte{0x60, 1, 0x7f, 1, 0x7f}, []byte{0x60, 1, 0x7f, 0}, []byte{0x60, 0, 1, 0x7f})...),
		wasmasm.Section(2, wasmasm.Vec(4,
			wasmasm.Cat(str("r"), str("new"), []byte{0x00, 0}),
			wasmasm.Cat(str("r"), str("rep"), []byte{0x00, 0}),
			wasmasm.Cat(str("r"), str("drop"), []byte{0x00, 1}),
			wasmasm.Cat(str("a"), str("last"), []byte{0x00, 2}))...),
		wasmasm.Section(3, wasmasm.Vec(1, []byte{2})...),
		wasmasm.Section(7, wasmasm.Vec(1, wasmasm.Cat(str("run"), []byte{0x00, 4}))...),
		wasmasm.Section(10, wasmasm.Vec(1, wasmasm.FuncBody([]byte{1, 1, 0x7f}, code))...),
	)
	return wasmasm.Cat(wasmasm.Preamble,
		wasmasm.Section(1, dtorMod...),
		wasmasm.Section(1, mainMod...),
		wasmasm.Section(2, 1, 0x00, 0, 0), // core instance 0
		wasmasm.Section(6, wasmasm.Cat([]byte{2},
			[]byte{0x00, 0x00, 0x01, 0}, str("dtor"), // core func 0
			[]byte{0x00, 0x00, 0x01, 0}, str("last"))...), // core func 1
		wasmasm.Section(7, 1, 0x3f, 0x7f, 0x01, 0),       // type 0: resource (rep i32) (dtor core func 0)
		wasmasm.Section(8, 3, 0x02, 0, 0x04, 0, 0x03, 0), // core funcs 2 new, 3 rep, 4 drop
		wasmasm.Section(2, wasmasm.Cat([]byte{2},
			[]byte{0x01}, wasmasm.Vec(3, wasmasm.Cat(str("new"), []byte{0x00, 2}), wasmasm.Cat(str("rep"), []byte{0x00, 3}), wasmasm.Cat(str("drop"), []byte{0x00, 4})),
			[]byte{0x01}, wasmasm.Vec(1, wasmasm.Cat(str("last"), []byte{0x00, 1})))...), // core instances 1, 2
		wasmasm.Section(2, wasmasm.Cat([]byte{1, 0x00, 1}, wasmasm.Vec(2, wasmasm.Cat(str("r"), []byte{0x12, 1}), wasmasm.Cat(str("a"), []byte{0x12, 2})))...), // core instance 3
		wasmasm.Section(6, wasmasm.Cat([]byte{1, 0x00, 0x00, 0x01, 3}, str("run"))...),                                                                         // core func 5
		wasmasm.Section(7, 2, 0x6a, 0x00, 0x00, 0x40, 0, 0x00, 1),                                                                                              // type 1 result, type 2 func() -> result
		wasmasm.Section(8, 1, 0x00, 0x00, 5, 0, 2),                                                                                                             // func 0 = lift core func 5
		wasmasm.Section(5, wasmasm.Cat([]byte{1, 0x01}, wasmasm.Vec(1, wasmasm.Cat([]byte{0x00}, str("run"), []byte{0x01, 0})))...),
		wasmasm.Section(11, wasmasm.Cat([]byte{1, 0x00}, str("wasi:cli/run@0.2.0"), []byte{0x05, 0, 0x00})...),
	)
}

func TestGuestResourceBuiltinsKeepTheRepAndRunTheDestructor(t *testing.T) {
	c, err := Compile(context.Background(), runtime(t), resourceGuest())
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	defer c.Close(context.Background())
	code, err := c.Run(context.Background(), Config{})
	if err != nil || code != 0 {
		t.Fatalf("run: exit %d, %v; want 0 (rep kept, destructor called with it)", code, err)
	}
}
