package binary

import "fmt"

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
