package component

import (
	"context"
	"strings"
	"testing"

	wa "github.com/fungi-go/fungi/internal/wasmasm"
)

// counterProvider is a component that defines a resource, counter (rep
// i32, with a destructor), and exports
//
//	make: func(n: u32) -> own<counter>     (resource.new(n))
//	get: func(self: borrow<counter>) -> u32 (the rep it is handed)
//	consume: func(c: own<counter>) -> u32  (resource.rep, then resource.drop)
//	dropped: func() -> u32                 (1000 × destructor calls + last rep)
//
// Inside it, a borrow of its own counter arrives as the rep itself and an
// own as a handle in its own table, as the canonical ABI lowers them.
func counterProvider() []byte {
	dtorMod := wa.Cat(wa.CoreHeader,
		wa.Section(1, wa.Vec(2, []byte{0x60, 1, 0x7f, 0}, []byte{0x60, 0, 1, 0x7f})...),
		wa.Section(3, wa.Vec(2, []byte{0}, []byte{1})...),
		wa.Section(6, wa.Vec(2, wa.Cat([]byte{0x7f, 0x01}, wa.I32(0), wa.End), wa.Cat([]byte{0x7f, 0x01}, wa.I32(0), wa.End))...),
		wa.Section(7, wa.Vec(2, wa.Cat(wa.Str("dtor"), []byte{0x00, 0}), wa.Cat(wa.Str("dropped"), []byte{0x00, 1}))...),
		wa.Section(10, wa.Vec(2,
			// last = rep; count++
			wa.FuncBody([]byte{0}, wa.Cat(wa.LocalGet(0), []byte{0x24, 0}, []byte{0x23, 1}, wa.I32(1), wa.I32Add, []byte{0x24, 1}, wa.End)),
			// count*1000 + last
			wa.FuncBody([]byte{0}, wa.Cat([]byte{0x23, 1}, wa.I32(1000), []byte{0x6c}, []byte{0x23, 0}, wa.I32Add, wa.End)))...),
	)
	// Imports r.new (0), r.rep (1), r.drop (2); defines make (3), get (4), consume (5).
	mainMod := wa.Cat(wa.CoreHeader,
		wa.Section(1, wa.Vec(2, []byte{0x60, 1, 0x7f, 1, 0x7f}, []byte{0x60, 1, 0x7f, 0})...),
		wa.Section(2, wa.Vec(3,
			wa.Cat(wa.Str("r"), wa.Str("new"), []byte{0x00, 0}),
			wa.Cat(wa.Str("r"), wa.Str("rep"), []byte{0x00, 0}),
			wa.Cat(wa.Str("r"), wa.Str("drop"), []byte{0x00, 1}))...),
		wa.Section(3, wa.Vec(3, []byte{0}, []byte{0}, []byte{0})...),
		wa.Section(7, wa.Vec(3,
			wa.Cat(wa.Str("make"), []byte{0x00, 3}),
			wa.Cat(wa.Str("get"), []byte{0x00, 4}),
			wa.Cat(wa.Str("consume"), []byte{0x00, 5}))...),
		wa.Section(10, wa.Vec(3,
			wa.FuncBody([]byte{0}, wa.Cat(wa.LocalGet(0), wa.Call(0), wa.End)),
			wa.FuncBody([]byte{0}, wa.Cat(wa.LocalGet(0), wa.End)),
			wa.FuncBody([]byte{1, 1, 0x7f}, wa.Cat(wa.LocalGet(0), wa.Call(1), wa.LocalSet(1), wa.LocalGet(0), wa.Call(2), wa.LocalGet(1), wa.End)))...),
	)
	return wa.Cat(wa.Preamble,
		wa.Section(1, dtorMod...),
		wa.Section(1, mainMod...),
		wa.Section(2, 1, 0x00, 0, 0), // core instance 0: the destructor's module
		wa.Section(6, wa.Cat([]byte{2},
			[]byte{0x00, 0x00, 0x01, 0}, wa.Str("dtor"), // core func 0
			[]byte{0x00, 0x00, 0x01, 0}, wa.Str("dropped"))...), // core func 1
		wa.Section(7, 1, 0x3f, 0x7f, 0x01, 0),                                                // type 0: resource (rep i32) (dtor core func 0)
		wa.Section(11, wa.Cat([]byte{1, 0x00}, wa.Str("counter"), []byte{0x03, 0, 0x00})...), // type 1: the export of type 0
		wa.Section(8, 3, 0x02, 0, 0x04, 0, 0x03, 0),                                          // core funcs 2 new, 3 rep, 4 drop
		wa.Section(2, wa.Cat([]byte{1, 0x01}, wa.Vec(3,
			wa.Cat(wa.Str("new"), []byte{0x00, 2}), wa.Cat(wa.Str("rep"), []byte{0x00, 3}), wa.Cat(wa.Str("drop"), []byte{0x00, 4})))...), // core instance 1
		wa.Section(2, wa.Cat([]byte{1, 0x00, 1}, wa.Vec(1, wa.Cat(wa.Str("r"), []byte{0x12, 1})))...), // core instance 2
		wa.Section(6, wa.Cat([]byte{3},
			[]byte{0x00, 0x00, 0x01, 2}, wa.Str("make"), // core func 5
			[]byte{0x00, 0x00, 0x01, 2}, wa.Str("get"), // core func 6
			[]byte{0x00, 0x00, 0x01, 2}, wa.Str("consume"))...), // core func 7
		wa.Section(7, wa.Cat([]byte{6},
			wa.Own(1), wa.Borrow(1), // types 2, 3
			wa.Func(wa.TypeRef(2), wa.Field{Name: "n", Type: wa.U32T}),    // type 4
			wa.Func(wa.U32T, wa.Field{Name: "self", Type: wa.TypeRef(3)}), // type 5
			wa.Func(wa.U32T, wa.Field{Name: "c", Type: wa.TypeRef(2)}),    // type 6
			wa.Func(wa.U32T))...), // type 7
		wa.Section(8, wa.Cat([]byte{4},
			[]byte{0x00, 0x00, 5, 0, 4},      // func 0: make
			[]byte{0x00, 0x00, 6, 0, 5},      // func 1: get
			[]byte{0x00, 0x00, 7, 0, 6},      // func 2: consume
			[]byte{0x00, 0x00, 1, 0, 7})...), // func 3: dropped
		wa.Section(11, wa.Cat([]byte{4},
			wa.Cat([]byte{0x00}, wa.Str("make"), []byte{0x01, 0, 0x00}),
			wa.Cat([]byte{0x00}, wa.Str("get"), []byte{0x01, 1, 0x00}),
			wa.Cat([]byte{0x00}, wa.Str("consume"), []byte{0x01, 2, 0x00}),
			wa.Cat([]byte{0x00}, wa.Str("dropped"), []byte{0x01, 3, 0x00}))...),
	)
}

// composedCounter is a command component composed as wac composes them:
// it carries counterProvider, instantiates it and lowers its exports (and
// resource.drop of its counter) into its main module, whose run is code
// (imported core funcs: 0 make, 1 get, 2 consume, 3 dropped, 4 drop;
// locals 5 and 6).
func composedCounter(code ...[]byte) []byte {
	var c wa.Component
	p := c.Instantiate(counterProvider())
	i32 := []byte{0x7f}
	imports := []wa.Import{
		{Func: c.AliasFunc(p, "make"), Core: wa.CoreFunc{Params: i32, Results: i32}},
		{Func: c.AliasFunc(p, "get"), Core: wa.CoreFunc{Params: i32, Results: i32}},
		{Func: c.AliasFunc(p, "consume"), Core: wa.CoreFunc{Params: i32, Results: i32}},
		{Func: c.AliasFunc(p, "dropped"), Core: wa.CoreFunc{Results: i32}},
		{Drop: true, Type: c.AliasType(p, "counter"), Core: wa.CoreFunc{Params: i32}},
	}
	return c.Bytes(wa.Command{Imports: imports, Locals: 2, Code: wa.Cat(code...), Pages: 2})
}

const (
	fMake byte = iota
	fGet
	fConsume
	fDropped
	fDrop
	h1 byte = 0 // run's locals
	h2 byte = 1
)

// A guest-defined resource crosses from the component that defines it to
// the one that uses it: make moves an own handle out, get lends a borrow
// back (the rep inside the definer), consume moves an own back in, and
// resource.drop in the user runs the definer's destructor.
func TestAComposedComponentsResourceCrossesBetweenItsParts(t *testing.T) {
	c := compileBytes(t, composedCounter(
		wa.I32(41), wa.Call(fMake), wa.LocalSet(h1),
		wa.LocalGet(h1), wa.Call(fGet), wa.I32(41), wa.I32Ne, wa.ReturnIf(1), // the borrow reached the definer as its rep
		wa.LocalGet(h1), wa.Call(fGet), wa.I32(41), wa.I32Ne, wa.ReturnIf(2), // and the handle is still the user's
		wa.I32(7), wa.Call(fMake), wa.LocalSet(h2),
		wa.LocalGet(h2), wa.Call(fConsume), wa.I32(7), wa.I32Ne, wa.ReturnIf(3), // moved in, rep read, dropped there
		wa.Call(fDropped), wa.I32(1007), wa.I32Ne, wa.ReturnIf(4), // the destructor ran once, on 7
		wa.LocalGet(h1), wa.Call(fDrop),
		wa.Call(fDropped), wa.I32(2041), wa.I32Ne, wa.ReturnIf(5), // the user's drop ran the definer's destructor on 41
		wa.I32(0),
	))
	code, err := c.Run(context.Background(), Config{})
	if err != nil || code != 0 {
		t.Fatalf("exit %d, %v; want 0 (the run returns which check failed)", code, err)
	}
}

// What the canonical ABI forbids traps: a handle moved to the other part
// is gone from the user's table, and a handle is valid only in the table
// of the instance it was given to.
func TestAComposedComponentsMovedHandleIsGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		code []byte
		want string
	}{
		{"use after move", wa.Cat(wa.I32(7), wa.Call(fMake), wa.LocalSet(h2), wa.LocalGet(h2), wa.Call(fConsume), []byte{0x1a}, wa.LocalGet(h2), wa.Call(fGet), []byte{0x1a}, wa.I32(0)), "resource handle 1 is not valid"},
		{"drop after move", wa.Cat(wa.I32(7), wa.Call(fMake), wa.LocalSet(h2), wa.LocalGet(h2), wa.Call(fConsume), []byte{0x1a}, wa.LocalGet(h2), wa.Call(fDrop), wa.I32(0)), "resource handle 1 is not valid"},
		{"a handle the user never had", wa.Cat(wa.I32(1), wa.Call(fGet), []byte{0x1a}, wa.I32(0)), "resource handle 1 is not valid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := compileBytes(t, composedCounter(tc.code))
			_, err := c.Run(context.Background(), Config{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want a trap saying %q", err, tc.want)
			}
		})
	}
}

// counterUser is a component that imports counterProvider's instance as
// "p" and exports peek: func(c: borrow<counter>) -> u32, which passes its
// borrow on to p's get and, when dropBorrow is set, drops the borrow handle
// before it returns, as the canonical ABI requires of a part that does not
// define the resource.
func counterUser(dropBorrow bool) []byte {
	var it wa.InstanceType
	r := it.Resource("counter")
	it.Func("get", it.Type(wa.Func(wa.U32T, wa.Field{Name: "self", Type: wa.TypeRef(it.Type(wa.Borrow(r)))})))
	body := wa.Cat(wa.LocalGet(0), wa.Call(0), wa.LocalSet(1))
	if dropBorrow {
		body = wa.Cat(body, wa.LocalGet(0), wa.Call(1))
	}
	mod := wa.Cat(wa.CoreHeader,
		wa.Section(1, wa.Vec(2, []byte{0x60, 1, 0x7f, 1, 0x7f}, []byte{0x60, 1, 0x7f, 0})...),
		wa.Section(2, wa.Vec(2,
			wa.Cat(wa.Str("p"), wa.Str("get"), []byte{0x00, 0}),
			wa.Cat(wa.Str("p"), wa.Str("drop"), []byte{0x00, 1}))...),
		wa.Section(3, wa.Vec(1, []byte{0})...),
		wa.Section(7, wa.Vec(1, wa.Cat(wa.Str("peek"), []byte{0x00, 2}))...),
		wa.Section(10, wa.Vec(1, wa.FuncBody([]byte{1, 1, 0x7f}, wa.Cat(body, wa.LocalGet(1), wa.End)))...),
	)
	return wa.Cat(wa.Preamble,
		wa.Section(7, wa.Cat([]byte{1}, it.Bytes())...),                                                               // type 0: p's instance type
		wa.Section(10, wa.Cat([]byte{1, 0x00}, wa.Str("p"), []byte{0x05, 0})...),                                      // instance 0: p
		wa.Section(6, wa.Cat([]byte{1, 0x03, 0x00, 0}, wa.Str("counter"))...),                                         // type 1: p's counter
		wa.Section(6, wa.Cat([]byte{1, 0x01, 0x00, 0}, wa.Str("get"))...),                                             // func 0: p's get
		wa.Section(7, wa.Cat([]byte{2}, wa.Borrow(1), wa.Func(wa.U32T, wa.Field{Name: "c", Type: wa.TypeRef(2)}))...), // types 2, 3
		wa.Section(8, 2, 0x01, 0x00, 0, 0, 0x03, 1),                                                                   // core funcs 0: lower get, 1: resource.drop counter
		wa.Section(1, mod...),
		wa.Section(2, wa.Cat([]byte{1, 0x01}, wa.Vec(2, wa.Cat(wa.Str("get"), []byte{0x00, 0}), wa.Cat(wa.Str("drop"), []byte{0x00, 1})))...), // core instance 0
		wa.Section(2, wa.Cat([]byte{1, 0x00, 0}, wa.Vec(1, wa.Cat(wa.Str("p"), []byte{0x12, 0})))...),                                         // core instance 1
		wa.Section(6, wa.Cat([]byte{1, 0x00, 0x00, 0x01, 1}, wa.Str("peek"))...),                                                              // core func 2
		wa.Section(8, 1, 0x00, 0x00, 2, 0, 3), // func 1: lift peek
		wa.Section(11, wa.Cat([]byte{1, 0x00}, wa.Str("peek"), []byte{0x01, 1, 0x00})...),
	)
}

// threePartCounter composes counterProvider, counterUser wired to it, and
// a main module that makes a counter, lends it to the user's peek (which
// lends it on to the provider) and then drops it.
func threePartCounter(dropBorrow bool) []byte {
	var c wa.Component
	p := c.Instantiate(counterProvider())
	u := c.InstantiateWith(counterUser(dropBorrow), wa.InstanceArg{Name: "p", Instance: p})
	i32 := []byte{0x7f}
	imports := []wa.Import{
		{Func: c.AliasFunc(p, "make"), Core: wa.CoreFunc{Params: i32, Results: i32}},
		{Func: c.AliasFunc(u, "peek"), Core: wa.CoreFunc{Params: i32, Results: i32}},
		{Func: c.AliasFunc(p, "dropped"), Core: wa.CoreFunc{Results: i32}},
		{Drop: true, Type: c.AliasType(p, "counter"), Core: wa.CoreFunc{Params: i32}},
	}
	code := wa.Cat(
		wa.I32(5), wa.Call(0), wa.LocalSet(0),
		wa.LocalGet(0), wa.Call(1), wa.I32(5), wa.I32Ne, wa.ReturnIf(1), // lent twice over, read as 5
		wa.LocalGet(0), wa.Call(1), wa.I32(5), wa.I32Ne, wa.ReturnIf(2), // and given back each time
		wa.LocalGet(0), wa.Call(3),
		wa.Call(2), wa.I32(1005), wa.I32Ne, wa.ReturnIf(3), // the provider's destructor ran on 5
		wa.I32(0),
	)
	return c.Bytes(wa.Command{Imports: imports, Locals: 1, Code: code, Pages: 2})
}

// A borrow passed through a part that does not define the resource is a
// handle there, lent on to the definer (where it is the rep) and returned
// when the calls return; a part that keeps a borrow past its call traps.
func TestABorrowCrossesThreePartsAndMustBeDroppedByTheMiddleOne(t *testing.T) {
	c := compileBytes(t, threePartCounter(true))
	if code, err := c.Run(context.Background(), Config{}); err != nil || code != 0 {
		t.Fatalf("exit %d, %v; want 0 (the run returns which check failed)", code, err)
	}
	c = compileBytes(t, threePartCounter(false))
	_, err := c.Run(context.Background(), Config{})
	if err == nil || !strings.Contains(err.Error(), "still held borrow handle") {
		t.Fatalf("err = %v; want a trap: the middle part returned holding its borrow", err)
	}
}
