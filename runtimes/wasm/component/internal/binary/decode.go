// Package binary decodes the WebAssembly component binary format (layer 1)
// into definitions kept in section order, because index spaces are built by
// that order. Nothing is resolved here: indices stay indices.
//
// Every count and size read from the binary is checked against the bytes
// left before anything is allocated, and nesting is bounded, so a hostile
// binary costs at most a small multiple of its own size.
package binary

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// MaxDepth bounds nested components and nested types.
const MaxDepth = 32

// Core sorts (core:sort).
const (
	CoreFunc     byte = 0x00
	CoreTable    byte = 0x01
	CoreMemory   byte = 0x02
	CoreGlobal   byte = 0x03
	CoreTypeSort byte = 0x10
	CoreModule   byte = 0x11
	CoreInstance byte = 0x12
)

// Component sorts (sort); a core sort is marked by Sort.Core.
const (
	SortFunc      byte = 0x01
	SortValue     byte = 0x02
	SortType      byte = 0x03
	SortComponent byte = 0x04
	SortInstance  byte = 0x05
)

// Sort names an index space.
type Sort struct {
	Core bool
	Kind byte
}

func (s Sort) String() string {
	if s.Core {
		switch s.Kind {
		case CoreFunc:
			return "core func"
		case CoreTable:
			return "core table"
		case CoreMemory:
			return "core memory"
		case CoreGlobal:
			return "core global"
		case CoreTypeSort:
			return "core type"
		case CoreModule:
			return "core module"
		case CoreInstance:
			return "core instance"
		}
		return fmt.Sprintf("core sort %#x", s.Kind)
	}
	switch s.Kind {
	case SortFunc:
		return "func"
	case SortValue:
		return "value"
	case SortType:
		return "type"
	case SortComponent:
		return "component"
	case SortInstance:
		return "instance"
	}
	return fmt.Sprintf("sort %#x", s.Kind)
}

// SortIdx is an index into one index space.
type SortIdx struct {
	Sort Sort
	Idx  uint32
}

// Component is one decoded component: its definitions in binary order.
type Component struct {
	Defs []any
}

// CoreModuleDef is an embedded core module, kept as bytes.
type CoreModuleDef struct{ Bytes []byte }

// CoreInstanceDef instantiates a core module or bundles exports.
type CoreInstanceDef struct {
	Inline  bool // true: Exports bundle; false: instantiate Module with Args
	Module  uint32
	Args    []CoreArg
	Exports []CoreExport
}

// CoreArg is (with name (instance i)).
type CoreArg struct {
	Name     string
	Instance uint32
}

// CoreExport is one inline export of a core instance.
type CoreExport struct {
	Name string
	Sort byte
	Idx  uint32
}

// CoreTypeDef is a core function type or a core module type.
type CoreTypeDef struct {
	Module  bool
	Params  []byte
	Results []byte
}

// NestedComponent is a component defined inside another.
type NestedComponent struct{ Component *Component }

// InstanceDef instantiates a component or bundles exports.
type InstanceDef struct {
	Inline    bool
	Component uint32
	Args      []InstanceArg // also the inline exports when Inline
}

// InstanceArg is a named sort index (an instantiate argument or an inline export).
type InstanceArg struct {
	Name string
	Item SortIdx
}

// Alias targets.
const (
	AliasExport     byte = 0x00
	AliasCoreExport byte = 0x01
	AliasOuter      byte = 0x02
)

// AliasDef adds an item to Sort's index space.
type AliasDef struct {
	Sort     Sort
	Target   byte
	Instance uint32 // export, core export
	Name     string // export, core export
	Count    uint32 // outer
	Idx      uint32 // outer
}

// TypeDef is one component type definition.
type TypeDef struct {
	Kind byte // one of the TypeKind* values, or a defvaltype opcode

	Prim byte // primitive opcode when Kind == TypePrim

	Fields []Field   // record, func params
	Cases  []Case    // variant
	Elem   ValType   // list, option, own/borrow (Elem.Idx)
	Types  []ValType // tuple
	Labels []string  // flags, enum
	Ok     *ValType  // result
	Err    *ValType  // result
	Length uint32    // fixed list

	Results      []Field  // func: named results
	Result       *ValType // func: a single unnamed result
	Decls        []Decl   // component and instance types
	ResourceDtor *uint32  // resource
}

// Type kinds beyond the defvaltype opcodes.
const (
	TypePrim      byte = 0x01
	TypeRecord    byte = 0x72
	TypeVariant   byte = 0x71
	TypeList      byte = 0x70
	TypeFixedList byte = 0x67
	TypeTuple     byte = 0x6f
	TypeFlags     byte = 0x6e
	TypeEnum      byte = 0x6d
	TypeOption    byte = 0x6b
	TypeResult    byte = 0x6a
	TypeOwn       byte = 0x69
	TypeBorrow    byte = 0x68
	TypeStream    byte = 0x66
	TypeFuture    byte = 0x65
	TypeFunc      byte = 0x40
	TypeComponent byte = 0x41
	TypeInstance  byte = 0x42
	TypeResource  byte = 0x3f
)

// Primitive value types.
const (
	PrimBool   byte = 0x7f
	PrimS8     byte = 0x7e
	PrimU8     byte = 0x7d
	PrimS16    byte = 0x7c
	PrimU16    byte = 0x7b
	PrimS32    byte = 0x7a
	PrimU32    byte = 0x79
	PrimS64    byte = 0x78
	PrimU64    byte = 0x77
	PrimF32    byte = 0x76
	PrimF64    byte = 0x75
	PrimChar   byte = 0x74
	PrimString byte = 0x73
	PrimErrCtx byte = 0x64
)

// ValType is a primitive (Prim != 0) or a type index.
type ValType struct {
	Prim byte
	Idx  uint32
}

// Field is a named value type.
type Field struct {
	Name string
	Type ValType
}

// Case is a variant case with an optional payload.
type Case struct {
	Name string
	Type *ValType
}

// Declaration kinds inside component and instance types.
const (
	DeclCoreType byte = 0x00
	DeclType     byte = 0x01
	DeclAlias    byte = 0x02
	DeclImport   byte = 0x03
	DeclExport   byte = 0x04
)

// Decl is one declaration of a component or instance type.
type Decl struct {
	Kind     byte
	CoreType *CoreTypeDef
	Type     *TypeDef
	Alias    *AliasDef
	Name     string
	Desc     ExternDesc
}

// Extern descriptor kinds (the sort byte of an externdesc).
const (
	DescModule    byte = 0x00
	DescFunc      byte = 0x01
	DescValue     byte = 0x02
	DescType      byte = 0x03
	DescComponent byte = 0x04
	DescInstance  byte = 0x05
)

// ExternDesc describes an import or export.
type ExternDesc struct {
	Kind     byte
	Idx      uint32 // type index (or value index / eq type index)
	SubRes   bool   // type bound (sub resource)
	ValueTyp *ValType
}

// CanonDef is one canonical function definition.
type CanonDef struct {
	Op   byte // CanonLift, CanonLower, CanonResourceNew, ...
	Func uint32
	Opts []CanonOpt
	Type uint32
}

// Canonical function opcodes that fungi decodes.
const (
	CanonLift         byte = 0x00
	CanonLower        byte = 0x01
	CanonResourceNew  byte = 0x02
	CanonResourceDrop byte = 0x03
	CanonResourceRep  byte = 0x04
)

// Canonical options.
const (
	OptUTF8       byte = 0x00
	OptUTF16      byte = 0x01
	OptLatin1     byte = 0x02
	OptMemory     byte = 0x03
	OptRealloc    byte = 0x04
	OptPostReturn byte = 0x05
	OptAsync      byte = 0x06
	OptCallback   byte = 0x07
)

// CanonOpt is an option with its index, if any.
type CanonOpt struct {
	Kind byte
	Idx  uint32
}

// ImportDef imports an item by name.
type ImportDef struct {
	Name string
	Desc ExternDesc
}

// ExportDef exports an item by name (and adds it to its index space).
type ExportDef struct {
	Name string
	Item SortIdx
	Desc *ExternDesc
}

// StartDef is a start function; fungi refuses it at link time.
type StartDef struct{}

// CustomDef is a custom section (its name only).
type CustomDef struct{ Name string }

// Magic is the preamble every component starts with (before its version).
var Magic = []byte{0x00, 0x61, 0x73, 0x6d}

// IsComponent reports whether b starts with a component preamble (layer 1).
func IsComponent(b []byte) bool {
	return len(b) >= 8 && string(b[:4]) == string(Magic) && b[6] == 0x01 && b[7] == 0x00
}

// Decode decodes a component binary.
func Decode(b []byte) (*Component, error) {
	if len(b) < 8 || string(b[:4]) != string(Magic) {
		return nil, errors.New("not a WebAssembly binary (no \\0asm preamble)")
	}
	if b[6] != 0x01 || b[7] != 0x00 {
		return nil, errors.New("a core module, not a component (layer is not 1)")
	}
	if b[4] != 0x0d || b[5] != 0x00 {
		return nil, fmt.Errorf("component binary version %#x is not supported (want 0x0d, the version every WASI 0.2 toolchain writes)", b[4])
	}
	r := &reader{b: b, off: 8}
	c, err := decodeSections(r, 0)
	if err != nil {
		return nil, fmt.Errorf("component binary at byte %d: %w", r.off, err)
	}
	return c, nil
}

type reader struct {
	b   []byte
	off int
}

var errEOF = errors.New("unexpected end of the binary")

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errEOF
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) peek() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errEOF
	}
	return r.b[r.off], nil
}

func (r *reader) u32() (uint32, error) {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > math.MaxUint32 {
				return 0, errors.New("u32 out of range")
			}
			return uint32(v), nil
		}
	}
	return 0, errors.New("u32 LEB128 too long")
}

// s33 reads a signed 33-bit LEB128 (a valtype or typeidx).
func (r *reader) s33() (int64, error) {
	var v int64
	var shift uint
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, nil
		}
	}
	return 0, errors.New("s33 LEB128 too long")
}

// count reads a vector length; each element takes at least min bytes, so a
// count larger than the bytes left is refused before any allocation.
func (r *reader) count(min int) (int, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(min) > uint64(r.left()) {
		return 0, fmt.Errorf("count %d exceeds the %d bytes left", n, r.left())
	}
	return int(n), nil
}

func (r *reader) bytes(n uint32) ([]byte, error) {
	if uint64(n) > uint64(r.left()) {
		return nil, fmt.Errorf("size %d exceeds the %d bytes left", n, r.left())
	}
	s := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	s, err := r.bytes(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(s) {
		return "", errors.New("name is not UTF-8")
	}
	return string(s), nil
}

func decodeSections(r *reader, depth int) (*Component, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("components nested deeper than %d", MaxDepth)
	}
	c := &Component{}
	for r.left() > 0 {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		body, err := r.bytes(size)
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		sr := &reader{b: body}
		if err := decodeSection(c, id, sr, depth); err != nil {
			return nil, fmt.Errorf("section %d at byte %d: %w", id, r.off-len(body)+sr.off, err)
		}
		if sr.left() != 0 {
			return nil, fmt.Errorf("section %d has %d bytes left over", id, sr.left())
		}
	}
	return c, nil
}

func decodeSection(c *Component, id byte, r *reader, depth int) error {
	switch id {
	case 0:
		n, err := r.name()
		if err != nil {
			return err
		}
		r.off = len(r.b)
		c.Defs = append(c.Defs, &CustomDef{Name: n})
		return nil
	case 1:
		if !(r.left() >= 8 && string(r.b[:4]) == string(Magic) && r.b[6] == 0x00) {
			return errors.New("nested core module has no core preamble")
		}
		c.Defs = append(c.Defs, &CoreModuleDef{Bytes: r.b})
		r.off = len(r.b)
		return nil
	case 4:
		if !(r.left() >= 8 && string(r.b[:4]) == string(Magic) && r.b[6] == 0x01 && r.b[4] == 0x0d) {
			return errors.New("nested component has no component preamble")
		}
		r.off = 8
		nc, err := decodeSections(r, depth+1)
		if err != nil {
			return fmt.Errorf("nested component: %w", err)
		}
		c.Defs = append(c.Defs, &NestedComponent{Component: nc})
		return nil
	case 9:
		return errors.New("start functions (component values) are not supported")
	case 12:
		return errors.New("component values are not supported")
	case 2, 3, 5, 6, 7, 8, 10, 11:
	default:
		return fmt.Errorf("unknown section id %d", id)
	}
	n, err := r.count(1)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		var d any
		switch id {
		case 2:
			d, err = r.coreInstance()
		case 3:
			d, err = r.coreType(depth)
		case 5:
			d, err = r.instance()
		case 6:
			d, err = r.alias()
		case 7:
			d, err = r.typeDef(depth)
		case 8:
			d, err = r.canon()
		case 10:
			var im ImportDef
			if im.Name, err = r.externName(); err == nil {
				im.Desc, err = r.externDesc()
			}
			d = &im
		case 11:
			d, err = r.export()
		default:
			return fmt.Errorf("unknown section id %d", id)
		}
		if err != nil {
			return fmt.Errorf("entry %d: %w", i, err)
		}
		c.Defs = append(c.Defs, d)
	}
	return nil
}

func (r *reader) coreInstance() (*CoreInstanceDef, error) {
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	d := &CoreInstanceDef{}
	switch tag {
	case 0x00:
		if d.Module, err = r.u32(); err != nil {
			return nil, err
		}
		n, err := r.count(3)
		if err != nil {
			return nil, err
		}
		d.Args = make([]CoreArg, n)
		for i := range d.Args {
			if d.Args[i].Name, err = r.name(); err != nil {
				return nil, err
			}
			s, err := r.byte()
			if err != nil {
				return nil, err
			}
			if s != CoreInstance {
				return nil, fmt.Errorf("core instantiate argument of sort %#x (want a core instance)", s)
			}
			if d.Args[i].Instance, err = r.u32(); err != nil {
				return nil, err
			}
		}
	case 0x01:
		d.Inline = true
		n, err := r.count(3)
		if err != nil {
			return nil, err
		}
		d.Exports = make([]CoreExport, n)
		for i := range d.Exports {
			if d.Exports[i].Name, err = r.name(); err != nil {
				return nil, err
			}
			if d.Exports[i].Sort, err = r.byte(); err != nil {
				return nil, err
			}
			if d.Exports[i].Idx, err = r.u32(); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("core instance expression %#x", tag)
	}
	return d, nil
}

func (r *reader) coreValTypes() ([]byte, error) {
	n, err := r.count(1)
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	for i := range out {
		c, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch c {
		case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		default:
			return nil, fmt.Errorf("core value type %#x", c)
		}
		out[i] = c
	}
	return out, nil
}

func (r *reader) coreType(depth int) (*CoreTypeDef, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("types nested deeper than %d", MaxDepth)
	}
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case 0x60:
		d := &CoreTypeDef{}
		if d.Params, err = r.coreValTypes(); err != nil {
			return nil, err
		}
		if d.Results, err = r.coreValTypes(); err != nil {
			return nil, err
		}
		return d, nil
	case 0x50:
		n, err := r.count(2)
		if err != nil {
			return nil, err
		}
		for i := 0; i < n; i++ {
			k, err := r.byte()
			if err != nil {
				return nil, err
			}
			switch k {
			case 0x00: // import
				if _, err = r.name(); err == nil {
					if _, err = r.name(); err == nil {
						err = r.coreImportDesc()
					}
				}
			case 0x01:
				_, err = r.coreType(depth + 1)
			case 0x02: // alias: sort, 0x01 outer, count, idx
				if _, err = r.byte(); err == nil {
					var t byte
					if t, err = r.byte(); err == nil && t != 0x01 {
						err = fmt.Errorf("core alias target %#x in a module type", t)
					}
					if err == nil {
						if _, err = r.u32(); err == nil {
							_, err = r.u32()
						}
					}
				}
			case 0x03:
				if _, err = r.name(); err == nil {
					err = r.coreImportDesc()
				}
			default:
				return nil, fmt.Errorf("module type declaration %#x", k)
			}
			if err != nil {
				return nil, err
			}
		}
		return &CoreTypeDef{Module: true}, nil
	}
	return nil, fmt.Errorf("core type %#x (only function and module types are supported)", tag)
}

func (r *reader) limits() error {
	f, err := r.byte()
	if err != nil {
		return err
	}
	if f > 0x07 {
		return fmt.Errorf("limits flag %#x", f)
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if f&1 != 0 {
		_, err = r.u32()
	}
	return err
}

func (r *reader) coreImportDesc() error {
	k, err := r.byte()
	if err != nil {
		return err
	}
	switch k {
	case 0x00:
		_, err = r.u32()
	case 0x01:
		if _, err = r.byte(); err == nil {
			err = r.limits()
		}
	case 0x02:
		err = r.limits()
	case 0x03:
		if _, err = r.byte(); err == nil {
			_, err = r.byte()
		}
	default:
		err = fmt.Errorf("core import kind %#x", k)
	}
	return err
}

func (r *reader) sort() (Sort, error) {
	k, err := r.byte()
	if err != nil {
		return Sort{}, err
	}
	if k == 0x00 {
		c, err := r.byte()
		if err != nil {
			return Sort{}, err
		}
		switch c {
		case CoreFunc, CoreTable, CoreMemory, CoreGlobal, CoreTypeSort, CoreModule, CoreInstance:
			return Sort{Core: true, Kind: c}, nil
		}
		return Sort{}, fmt.Errorf("core sort %#x", c)
	}
	if k < SortFunc || k > SortInstance {
		return Sort{}, fmt.Errorf("sort %#x", k)
	}
	return Sort{Kind: k}, nil
}

func (r *reader) sortIdx() (SortIdx, error) {
	s, err := r.sort()
	if err != nil {
		return SortIdx{}, err
	}
	i, err := r.u32()
	return SortIdx{Sort: s, Idx: i}, err
}

func (r *reader) instance() (*InstanceDef, error) {
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	d := &InstanceDef{}
	switch tag {
	case 0x00:
		if d.Component, err = r.u32(); err != nil {
			return nil, err
		}
	case 0x01:
		d.Inline = true
	default:
		return nil, fmt.Errorf("instance expression %#x", tag)
	}
	n, err := r.count(3)
	if err != nil {
		return nil, err
	}
	d.Args = make([]InstanceArg, n)
	for i := range d.Args {
		if d.Inline {
			d.Args[i].Name, err = r.externName()
		} else {
			d.Args[i].Name, err = r.name()
		}
		if err != nil {
			return nil, err
		}
		if d.Args[i].Item, err = r.sortIdx(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (r *reader) alias() (*AliasDef, error) {
	s, err := r.sort()
	if err != nil {
		return nil, err
	}
	d := &AliasDef{Sort: s}
	if d.Target, err = r.byte(); err != nil {
		return nil, err
	}
	switch d.Target {
	case AliasExport, AliasCoreExport:
		if d.Instance, err = r.u32(); err != nil {
			return nil, err
		}
		d.Name, err = r.name()
	case AliasOuter:
		if d.Count, err = r.u32(); err == nil {
			d.Idx, err = r.u32()
		}
	default:
		return nil, fmt.Errorf("alias target %#x", d.Target)
	}
	return d, err
}

// externName reads importname'/exportname': a 0x00 or 0x01 discriminant
// (plain name or interface name; both are followed by the name alone).
func (r *reader) externName() (string, error) {
	tag, err := r.byte()
	if err != nil {
		return "", err
	}
	if tag > 0x01 {
		return "", fmt.Errorf("extern name tag %#x", tag)
	}
	return r.name()
}

func (r *reader) valType() (ValType, error) {
	v, err := r.s33()
	if err != nil {
		return ValType{}, err
	}
	if v >= 0 {
		if v > math.MaxUint32 {
			return ValType{}, errors.New("type index out of range")
		}
		return ValType{Idx: uint32(v)}, nil
	}
	p := byte(v & 0x7f)
	if !isPrim(p) {
		return ValType{}, fmt.Errorf("value type %#x", p)
	}
	return ValType{Prim: p}, nil
}

func isPrim(p byte) bool { return (p >= PrimString && p <= PrimBool) || p == PrimErrCtx }

func (r *reader) optValType() (*ValType, error) {
	f, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch f {
	case 0x00:
		return nil, nil
	case 0x01:
		v, err := r.valType()
		return &v, err
	}
	return nil, fmt.Errorf("option flag %#x", f)
}

func (r *reader) fields() ([]Field, error) {
	n, err := r.count(2)
	if err != nil {
		return nil, err
	}
	fs := make([]Field, n)
	for i := range fs {
		if fs[i].Name, err = r.name(); err != nil {
			return nil, err
		}
		if fs[i].Type, err = r.valType(); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

func (r *reader) labels() ([]string, error) {
	n, err := r.count(1)
	if err != nil {
		return nil, err
	}
	ls := make([]string, n)
	for i := range ls {
		if ls[i], err = r.name(); err != nil {
			return nil, err
		}
	}
	return ls, nil
}

func (r *reader) typeDef(depth int) (*TypeDef, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("types nested deeper than %d", MaxDepth)
	}
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	d := &TypeDef{Kind: tag}
	switch {
	case isPrim(tag):
		d.Kind, d.Prim = TypePrim, tag
	case tag == TypeRecord:
		d.Fields, err = r.fields()
	case tag == TypeVariant:
		var n int
		if n, err = r.count(3); err != nil {
			return nil, err
		}
		d.Cases = make([]Case, n)
		for i := range d.Cases {
			if d.Cases[i].Name, err = r.name(); err != nil {
				return nil, err
			}
			if d.Cases[i].Type, err = r.optValType(); err != nil {
				return nil, err
			}
			var refines byte
			if refines, err = r.byte(); err != nil {
				return nil, err
			}
			if refines != 0 {
				return nil, errors.New("variant case refinements are not supported")
			}
		}
	case tag == TypeList, tag == TypeOption:
		d.Elem, err = r.valType()
	case tag == TypeFixedList:
		if d.Elem, err = r.valType(); err == nil {
			d.Length, err = r.u32()
		}
	case tag == TypeTuple:
		var n int
		if n, err = r.count(1); err != nil {
			return nil, err
		}
		d.Types = make([]ValType, n)
		for i := range d.Types {
			if d.Types[i], err = r.valType(); err != nil {
				return nil, err
			}
		}
	case tag == TypeFlags, tag == TypeEnum:
		d.Labels, err = r.labels()
	case tag == TypeResult:
		if d.Ok, err = r.optValType(); err == nil {
			d.Err, err = r.optValType()
		}
	case tag == TypeOwn, tag == TypeBorrow:
		d.Elem.Idx, err = r.u32()
	case tag == TypeStream, tag == TypeFuture:
		_, err = r.optValType()
	case tag == TypeFunc:
		if d.Fields, err = r.fields(); err != nil {
			return nil, err
		}
		var k byte
		if k, err = r.byte(); err != nil {
			return nil, err
		}
		switch k {
		case 0x00:
			v, err := r.valType()
			if err != nil {
				return nil, err
			}
			d.Result = &v
		case 0x01:
			d.Results, err = r.fields()
		default:
			return nil, fmt.Errorf("result list %#x", k)
		}
	case tag == TypeComponent, tag == TypeInstance:
		var n int
		if n, err = r.count(2); err != nil {
			return nil, err
		}
		d.Decls = make([]Decl, 0, min(n, 64))
		for i := 0; i < n; i++ {
			decl, err := r.decl(tag == TypeComponent, depth)
			if err != nil {
				return nil, fmt.Errorf("declaration %d: %w", i, err)
			}
			d.Decls = append(d.Decls, decl)
		}
	case tag == TypeResource:
		var rep byte
		if rep, err = r.byte(); err != nil {
			return nil, err
		}
		if rep != 0x7f {
			return nil, fmt.Errorf("resource representation %#x (want i32)", rep)
		}
		var f byte
		if f, err = r.byte(); err != nil {
			return nil, err
		}
		if f == 0x01 {
			var i uint32
			if i, err = r.u32(); err != nil {
				return nil, err
			}
			d.ResourceDtor = &i
		} else if f != 0x00 {
			return nil, fmt.Errorf("resource destructor flag %#x", f)
		}
	default:
		return nil, fmt.Errorf("type %#x", tag)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (r *reader) decl(component bool, depth int) (Decl, error) {
	k, err := r.byte()
	if err != nil {
		return Decl{}, err
	}
	d := Decl{Kind: k}
	switch k {
	case DeclCoreType:
		d.CoreType, err = r.coreType(depth + 1)
	case DeclType:
		d.Type, err = r.typeDef(depth + 1)
	case DeclAlias:
		d.Alias, err = r.alias()
		if err == nil && d.Alias.Target != AliasOuter {
			err = errors.New("only outer aliases are allowed in a type")
		}
	case DeclImport, DeclExport:
		if k == DeclImport && !component {
			return d, errors.New("an import in an instance type")
		}
		if d.Name, err = r.externName(); err == nil {
			d.Desc, err = r.externDesc()
		}
	default:
		err = fmt.Errorf("declaration kind %#x", k)
	}
	return d, err
}

func (r *reader) externDesc() (ExternDesc, error) {
	k, err := r.byte()
	if err != nil {
		return ExternDesc{}, err
	}
	d := ExternDesc{Kind: k}
	switch k {
	case DescModule:
		var c byte
		if c, err = r.byte(); err == nil && c != 0x11 {
			err = fmt.Errorf("module extern descriptor %#x", c)
		}
		if err == nil {
			d.Idx, err = r.u32()
		}
	case DescFunc, DescComponent, DescInstance:
		d.Idx, err = r.u32()
	case DescValue:
		var b byte
		if b, err = r.byte(); err != nil {
			break
		}
		switch b {
		case 0x00:
			d.Idx, err = r.u32()
		case 0x01:
			var v ValType
			v, err = r.valType()
			d.ValueTyp = &v
		default:
			err = fmt.Errorf("value bound %#x", b)
		}
	case DescType:
		var b byte
		if b, err = r.byte(); err != nil {
			break
		}
		switch b {
		case 0x00:
			d.Idx, err = r.u32()
		case 0x01:
			d.SubRes = true
		default:
			err = fmt.Errorf("type bound %#x", b)
		}
	default:
		err = fmt.Errorf("extern descriptor %#x", k)
	}
	return d, err
}

func (r *reader) canon() (*CanonDef, error) {
	op, err := r.byte()
	if err != nil {
		return nil, err
	}
	d := &CanonDef{Op: op}
	switch op {
	case CanonLift, CanonLower:
		var z byte
		if z, err = r.byte(); err != nil {
			return nil, err
		}
		if z != 0x00 {
			return nil, fmt.Errorf("canon %#x sub-opcode %#x", op, z)
		}
		if d.Func, err = r.u32(); err != nil {
			return nil, err
		}
		n, err := r.count(1)
		if err != nil {
			return nil, err
		}
		d.Opts = make([]CanonOpt, n)
		for i := range d.Opts {
			if d.Opts[i].Kind, err = r.byte(); err != nil {
				return nil, err
			}
			switch d.Opts[i].Kind {
			case OptUTF8, OptUTF16, OptLatin1, OptAsync:
			case OptMemory, OptRealloc, OptPostReturn, OptCallback:
				if d.Opts[i].Idx, err = r.u32(); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("canonical option %#x", d.Opts[i].Kind)
			}
		}
		if op == CanonLift {
			if d.Type, err = r.u32(); err != nil {
				return nil, err
			}
		}
	case CanonResourceNew, CanonResourceDrop, CanonResourceRep:
		d.Type, err = r.u32()
	default:
		return nil, fmt.Errorf("canonical built-in %#x is not supported (async and threads are not)", op)
	}
	return d, err
}

func (r *reader) export() (*ExportDef, error) {
	d := &ExportDef{}
	var err error
	if d.Name, err = r.externName(); err != nil {
		return nil, err
	}
	if d.Item, err = r.sortIdx(); err != nil {
		return nil, err
	}
	f, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch f {
	case 0x00:
	case 0x01:
		ed, err := r.externDesc()
		if err != nil {
			return nil, err
		}
		d.Desc = &ed
	default:
		return nil, fmt.Errorf("export type flag %#x", f)
	}
	return d, nil
}
