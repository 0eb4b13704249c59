package wasmasm

import "strconv"

// A small assembler for components that import WASI interfaces and export
// wasi:cli/run from one core module: enough to write a guest by hand that
// no toolchain here can build (a TCP server over wasi:sockets, a guest that
// breaks a WASI rule on purpose). Types are written as their binary
// encodings; ValType values are either a primitive or a type index.

// ValType is an encoded component value type.
type ValType []byte

// Primitive value types.
var (
	Bool   = ValType{0x7f}
	U8     = ValType{0x7d}
	U16    = ValType{0x7b}
	U32T   = ValType{0x79}
	U64    = ValType{0x77}
	String = ValType{0x73}
)

// TypeRef is the value type named by type index i (a signed LEB128 s33).
func TypeRef(i uint32) ValType {
	v := int64(i)
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v == 0 && b&0x40 == 0 {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

// Field is a named record field or function parameter.
type Field struct {
	Name string
	Type ValType
}

// Case is a variant case; Type nil carries no payload.
type Case struct {
	Name string
	Type ValType
}

// Own, Borrow, List, Tuple, Record, Variant, Enum, Option, Result and Func
// are type definitions.
func Own(i uint32) []byte    { return U32([]byte{0x69}, i) }
func Borrow(i uint32) []byte { return U32([]byte{0x68}, i) }
func List(e ValType) []byte  { return Cat([]byte{0x70}, e) }
func Tuple(ts ...ValType) []byte {
	items := make([][]byte, len(ts))
	for i, t := range ts {
		items[i] = t
	}
	return Cat([]byte{0x6f}, Vec(len(ts), items...))
}
func Record(fs ...Field) []byte {
	items := make([][]byte, len(fs))
	for i, f := range fs {
		items[i] = Cat(Str(f.Name), f.Type)
	}
	return Cat([]byte{0x72}, Vec(len(fs), items...))
}
func Variant(cs ...Case) []byte {
	items := make([][]byte, len(cs))
	for i, c := range cs {
		items[i] = Cat(Str(c.Name), opt(c.Type), []byte{0x00})
	}
	return Cat([]byte{0x71}, Vec(len(cs), items...))
}
func Enum(labels ...string) []byte {
	items := make([][]byte, len(labels))
	for i, l := range labels {
		items[i] = Str(l)
	}
	return Cat([]byte{0x6d}, Vec(len(labels), items...))
}
func Option(t ValType) []byte       { return Cat([]byte{0x6b}, t) }
func Result(ok, err ValType) []byte { return Cat([]byte{0x6a}, opt(ok), opt(err)) }

// Func is a function type; result nil returns nothing.
func Func(result ValType, params ...Field) []byte {
	items := make([][]byte, len(params))
	for i, p := range params {
		items[i] = Cat(Str(p.Name), p.Type)
	}
	res := []byte{0x01, 0x00}
	if result != nil {
		res = Cat([]byte{0x00}, result)
	}
	return Cat([]byte{0x40}, Vec(len(params), items...), res)
}

func opt(t ValType) []byte {
	if t == nil {
		return []byte{0x00}
	}
	return Cat([]byte{0x01}, t)
}

// InstanceType declares an imported interface: its resources, types and
// functions, and the types it takes from the component (outer aliases).
type InstanceType struct {
	decls [][]byte
	n     uint32
}

// Resource exports an abstract resource type named name.
func (t *InstanceType) Resource(name string) uint32 {
	t.decls = append(t.decls, Cat([]byte{0x04, 0x00}, Str(name), []byte{0x03, 0x01}))
	t.n++
	return t.n - 1
}

// Outer takes the component's type idx into the instance type.
func (t *InstanceType) Outer(idx uint32) uint32 {
	t.decls = append(t.decls, U32([]byte{0x02, 0x03, 0x02, 1}, idx))
	t.n++
	return t.n - 1
}

// Type defines a type inside the instance type.
func (t *InstanceType) Type(def []byte) uint32 {
	t.decls = append(t.decls, Cat([]byte{0x01}, def))
	t.n++
	return t.n - 1
}

// Func exports a function of type typ.
func (t *InstanceType) Func(name string, typ uint32) {
	t.decls = append(t.decls, U32(Cat([]byte{0x04, 0x00}, Str(name), []byte{0x01}), typ))
}

// Bytes is the instance type's definition.
func (t *InstanceType) Bytes() []byte { return Cat([]byte{0x42}, Vec(len(t.decls), t.decls...)) }

// CoreFunc is what a core function is imported as: its core parameter and
// result types (0x7f i32, 0x7e i64).
type CoreFunc struct{ Params, Results []byte }

// Import is one core function the main module imports as h.f<i>: a lowered
// component function, or (Drop) a resource type's resource.drop.
type Import struct {
	Func uint32 // component function index, when Drop is false
	Drop bool
	Type uint32 // component type index of the resource, when Drop is set
	Core CoreFunc
}

// Component assembles a component section by section.
type Component struct {
	sections  [][]byte
	types     uint32
	instances uint32
	funcs     uint32
	comps     uint32
}

// ImportInstance imports the interface name with type t.
func (c *Component) ImportInstance(name string, t *InstanceType) uint32 {
	c.sections = append(c.sections,
		Section(7, Cat([]byte{1}, t.Bytes())...),
		Section(10, Cat([]byte{1, 0x00}, Str(name), U32([]byte{0x05}, c.types))...))
	c.types++
	c.instances++
	return c.instances - 1
}

// AliasType takes the type an imported instance exports as name.
func (c *Component) AliasType(inst uint32, name string) uint32 {
	c.sections = append(c.sections, Section(6, Cat([]byte{1, 0x03, 0x00}, U32(nil, inst), Str(name))...))
	c.types++
	return c.types - 1
}

// AliasFunc takes the function an instance exports as name.
func (c *Component) AliasFunc(inst uint32, name string) uint32 {
	c.sections = append(c.sections, Section(6, Cat([]byte{1, 0x01, 0x00}, U32(nil, inst), Str(name))...))
	c.funcs++
	return c.funcs - 1
}

// Type defines a component-level type.
func (c *Component) Type(def []byte) uint32 {
	c.sections = append(c.sections, Section(7, Cat([]byte{1}, def)...))
	c.types++
	return c.types - 1
}

// Raw appends sections the builder does not model; the caller keeps the
// index spaces straight.
func (c *Component) Raw(sections ...[]byte) { c.sections = append(c.sections, sections...) }

// Command is the core side of a command component: one main module whose
// run() -> i32 (0 ok, else err) is lifted as wasi:cli/run's run. Its memory
// (Pages of 64 KiB) and realloc live in a module of their own, instantiated
// first, so that the lowered imports can name them; realloc hands out
// HeapAddr every time, so a guest must be done with one host allocation
// before the next call that allocates.
type Command struct {
	Imports []Import
	// Locals are the run function's locals, all i32; Code is its body
	// without the final end.
	Locals byte
	Code   []byte
	Pages  uint32
}

// HeapAddr is where realloc puts whatever the host stores in a Command's
// memory; RetAddr is a free area for results returned through a pointer.
const (
	HeapAddr = 65536
	RetAddr  = 16
)

// Bytes finishes the component: it adds the command's modules and the
// wasi:cli/run@0.2.0 export after the sections built so far.
func (c *Component) Bytes(cmd Command) []byte {
	memMod := Cat(CoreHeader,
		Section(1, Vec(1, []byte{0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f})...),
		Section(3, Vec(1, []byte{0})...),
		Section(5, Cat(Vec(1, []byte{0x00}), U32(nil, cmd.Pages))...),
		Section(7, Vec(2, Cat(Str("memory"), []byte{0x02, 0}), Cat(Str("realloc"), []byte{0x00, 0}))...),
		Section(10, Vec(1, FuncBody([]byte{0}, Cat(I32(HeapAddr), End)))...),
	)
	// Core types: one per import, then run's () -> i32.
	var types, imports [][]byte
	for i, im := range cmd.Imports {
		types = append(types, Cat([]byte{0x60}, Vec(len(im.Core.Params), bytesOf(im.Core.Params)...), Vec(len(im.Core.Results), bytesOf(im.Core.Results)...)))
		imports = append(imports, Cat(Str("h"), Str("f"+strconv.Itoa(i)), U32([]byte{0x00}, uint32(i))))
	}
	n := uint32(len(cmd.Imports))
	types = append(types, []byte{0x60, 0, 1, 0x7f})
	imports = append(imports, Cat(Str("env"), Str("memory"), []byte{0x02, 0x00, 1}))
	locals := []byte{0}
	if cmd.Locals > 0 {
		locals = []byte{1, cmd.Locals, 0x7f}
	}
	mainMod := Cat(CoreHeader,
		Section(1, Vec(len(types), types...)...),
		Section(2, Vec(len(imports), imports...)...),
		Section(3, U32(U32(nil, 1), n)...),
		Section(7, Vec(1, U32(Cat(Str("run"), []byte{0x00}), n))...),
		Section(10, Vec(1, FuncBody(locals, Cat(cmd.Code, End)))...),
	)
	// Core funcs: 0 realloc, 1..n the imports, n+1 run.
	var canons, bag [][]byte
	for i, im := range cmd.Imports {
		if im.Drop {
			canons = append(canons, U32([]byte{0x03}, im.Type))
		} else {
			canons = append(canons, Cat(U32([]byte{0x01, 0x00}, im.Func), []byte{3, 0x03, 0, 0x04, 0, 0x00}))
		}
		bag = append(bag, U32(Cat(Str("f"+strconv.Itoa(i)), []byte{0x00}), uint32(i+1)))
	}
	resT := c.Type(Result(nil, nil))
	runT := c.Type(Func(TypeRef(resT)))
	out := Cat(Preamble)
	for _, s := range c.sections {
		out = append(out, s...)
	}
	var canonSection []byte
	if len(canons) > 0 {
		canonSection = Section(8, Vec(len(canons), canons...)...)
	}
	return Cat(out,
		Section(1, memMod...),
		Section(1, mainMod...),
		Section(2, 1, 0x00, 0, 0), // core instance 0: memory and realloc
		Section(6, Cat([]byte{2},
			[]byte{0x00, 0x02, 0x01, 0}, Str("memory"), // core memory 0
			[]byte{0x00, 0x00, 0x01, 0}, Str("realloc"))...), // core func 0
		canonSection,
		Section(2, Cat([]byte{2},
			[]byte{0x01}, Vec(len(bag), bag...),
			[]byte{0x01}, Vec(1, Cat(Str("memory"), []byte{0x02, 0})))...), // core instances 1, 2
		Section(2, Cat([]byte{1, 0x00, 1}, Vec(2, Cat(Str("h"), []byte{0x12, 1}), Cat(Str("env"), []byte{0x12, 2})))...), // core instance 3
		Section(6, Cat([]byte{1, 0x00, 0x00, 0x01, 3}, Str("run"))...),                                                   // core func n+1
		Section(8, Cat([]byte{1, 0x00, 0x00}, U32(nil, n+1), []byte{0}, U32(nil, runT))...),                              // func: run
		Section(5, Cat([]byte{1, 0x01}, Vec(1, Cat([]byte{0x00}, Str("run"), U32([]byte{0x01}, c.funcs))))...),
		Section(11, Cat([]byte{1, 0x00}, Str("wasi:cli/run@0.2.0"), U32([]byte{0x05}, c.instances), []byte{0x00})...),
	)
}

func bytesOf(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

// More core instructions.
var (
	I32Load8U = []byte{0x2d, 0, 0}
	I32Eqz    = []byte{0x45}
	I32Ne     = []byte{0x47}
	Return    = []byte{0x0f}
)

// I64 is i64.const v.
func I64(v int64) []byte {
	out := []byte{0x42}
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

// CallN is call f for any function index.
func CallN(f uint32) []byte { return U32([]byte{0x10}, f) }

// ReturnIf returns code when the i32 on the stack is non-zero.
func ReturnIf(code int32) []byte {
	return Cat([]byte{0x04, 0x40}, I32(code), Return, End)
}

// Loop runs body forever; inside it, BrLoop(depth) continues and
// BrIfOut(depth) leaves (depth counts the blocks opened inside body).
func Loop(body ...[]byte) []byte {
	return Cat([]byte{0x02, 0x40, 0x03, 0x40}, Cat(body...), []byte{0x0c, 0}, End, End)
}

// BrLoop continues the innermost Loop from depth blocks inside it.
func BrLoop(depth byte) []byte { return []byte{0x0c, depth} }

// BrIfOut leaves the innermost Loop when the i32 on the stack is non-zero.
func BrIfOut(depth byte) []byte { return []byte{0x0d, depth + 1} }

// BrIfLoop continues the innermost Loop when the i32 on the stack is non-zero.
func BrIfLoop(depth byte) []byte { return []byte{0x0d, depth} }

// Load8 is i32.load8_u at addr.
func Load8(addr int32) []byte { return Cat(I32(addr), I32Load8U) }

// LoadAt is i32.load at addr.
func LoadAt(addr int32) []byte { return Cat(I32(addr), Load(0)) }
