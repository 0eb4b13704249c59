package component

import (
	"context"
	"testing"
)

// resourceGuest is a hand-made command component that defines its own
// resource (rep i32, with a destructor) and, through the canonical built-ins
// resource.new, resource.rep and resource.drop, checks that a handle keeps
// its representation and that dropping it runs the destructor with it.
func resourceGuest() []byte {
	header := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	dtorMod := cat(header,
		coreSection(1, vec(2, []byte{0x60, 1, 0x7f, 0}, []byte{0x60, 0, 1, 0x7f})),
		coreSection(3, vec(2, []byte{0}, []byte{1})),
		coreSection(6, vec(1, cat([]byte{0x7f, 0x01}, i32c(0), []byte{0x0b}))),
		coreSection(7, vec(2, cat(str("dtor"), []byte{0x00, 0}), cat(str("last"), []byte{0x00, 1}))),
		coreSection(10, vec(2,
			funcBody([]byte{0}, []byte{0x20, 0, 0x24, 0, 0x0b}), // global = rep
			funcBody([]byte{0}, []byte{0x23, 0, 0x0b}))),
	)
	fail := cat([]byte{0x04, 0x40}, i32c(1), []byte{0x0f, 0x0b})
	code := cat(
		i32c(42), []byte{0x10, 0, 0x21, 0}, // h = resource.new(42)
		[]byte{0x20, 0, 0x10, 1}, i32c(42), []byte{0x47}, fail, // rep(h) != 42
		[]byte{0x20, 0, 0x10, 2},                      // resource.drop(h)
		[]byte{0x10, 3}, i32c(42), []byte{0x47}, fail, // the destructor did not see 42
		i32c(0), []byte{0x0b},
	)
	mainMod := cat(header,
		coreSection(1, vec(3, []byte{0x60, 1, 0x7f, 1, 0x7f}, []byte{0x60, 1, 0x7f, 0}, []byte{0x60, 0, 1, 0x7f})),
		coreSection(2, vec(4,
			cat(str("r"), str("new"), []byte{0x00, 0}),
			cat(str("r"), str("rep"), []byte{0x00, 0}),
			cat(str("r"), str("drop"), []byte{0x00, 1}),
			cat(str("a"), str("last"), []byte{0x00, 2}))),
		coreSection(3, vec(1, []byte{2})),
		coreSection(7, vec(1, cat(str("run"), []byte{0x00, 4}))),
		coreSection(10, vec(1, funcBody([]byte{1, 1, 0x7f}, code))),
	)
	return cat(preamble,
		section(1, dtorMod...),
		section(1, mainMod...),
		section(2, 1, 0x00, 0, 0), // core instance 0
		section(6, cat([]byte{2},
			[]byte{0x00, 0x00, 0x01, 0}, str("dtor"), // core func 0
			[]byte{0x00, 0x00, 0x01, 0}, str("last"))...), // core func 1
		section(7, 1, 0x3f, 0x7f, 0x01, 0),       // type 0: resource (rep i32) (dtor core func 0)
		section(8, 3, 0x02, 0, 0x04, 0, 0x03, 0), // core funcs 2 new, 3 rep, 4 drop
		section(2, cat([]byte{2},
			[]byte{0x01}, vec(3, cat(str("new"), []byte{0x00, 2}), cat(str("rep"), []byte{0x00, 3}), cat(str("drop"), []byte{0x00, 4})),
			[]byte{0x01}, vec(1, cat(str("last"), []byte{0x00, 1})))...), // core instances 1, 2
		section(2, cat([]byte{1, 0x00, 1}, vec(2, cat(str("r"), []byte{0x12, 1}), cat(str("a"), []byte{0x12, 2})))...), // core instance 3
		section(6, cat([]byte{1, 0x00, 0x00, 0x01, 3}, str("run"))...),                                                 // core func 5
		section(7, 2, 0x6a, 0x00, 0x00, 0x40, 0, 0x00, 1),                                                              // type 1 result, type 2 func() -> result
		section(8, 1, 0x00, 0x00, 5, 0, 2),                                                                             // func 0 = lift core func 5
		section(5, cat([]byte{1, 0x01}, vec(1, cat([]byte{0x00}, str("run"), []byte{0x01, 0})))...),
		section(11, cat([]byte{1, 0x00}, str("wasi:cli/run@0.2.0"), []byte{0x05, 0, 0x00})...),
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
