package component

import (
	"fmt"
	"strings"
)

// kind is a WIT value type's shape.
type kind uint8

const (
	kBool kind = iota
	kS8
	kU8
	kS16
	kU16
	kS32
	kU32
	kS64
	kU64
	kF32
	kF64
	kChar
	kString
	kList
	kRecord
	kTuple
	kVariant
	kEnum
	kOption
	kResult
	kFlags
	kOwn
	kBorrow
)

// coreType is a flattened core value type.
type coreType uint8

const (
	ci32 coreType = iota
	ci64
	cf32
	cf64
)

// vtype is a resolved WIT value type with its canonical ABI layout cached.
type vtype struct {
	kind   kind
	elem   *vtype   // list, option
	fields []*vtype // record, tuple
	cases  []*vtype // variant, result (ok, err); nil entries carry no payload
	labels []string // record fields, variant cases, enum and flags labels
	res    *resourceType

	laidOut     bool
	size, align uint32
	flat        []coreType
	payloadOff  uint32 // variant: offset of the payload
	discSize    uint32 // variant, enum: size of the discriminant
}

// resourceType identifies a resource; host resources are the abstract ones
// the imported WASI interfaces declare, guest resources are defined by the
// component itself.
type resourceType struct {
	name  string
	guest bool
	dtor  *coreItem // guest resources only
	// impl is the handle table of the component instance that defined a
	// guest resource (its "impl" in the canonical ABI): a borrow lowered
	// into that instance is the rep itself, not a handle.
	impl int
}

// funcType is a component function type; results form a tuple.
type funcType struct {
	params     []*vtype
	paramNames []string
	results    []*vtype
}

// instanceType lists an instance's exports by name.
type instanceType struct {
	exports map[string]any // *funcType, type entries, *instanceType
}

// componentType is kept only so component-typed imports can be refused by name.
type componentType struct{}

var prims = map[byte]kind{
	0x7f: kBool, 0x7e: kS8, 0x7d: kU8, 0x7c: kS16, 0x7b: kU16, 0x7a: kS32, 0x79: kU32,
	0x78: kS64, 0x77: kU64, 0x76: kF32, 0x75: kF64, 0x74: kChar, 0x73: kString,
}

var primTypes = func() map[byte]*vtype {
	m := map[byte]*vtype{}
	for b, k := range prims {
		m[b] = &vtype{kind: k}
	}
	return m
}()

func (t *vtype) String() string {
	switch t.kind {
	case kList:
		return "list<" + t.elem.String() + ">"
	case kOption:
		return "option<" + t.elem.String() + ">"
	case kRecord:
		return "record{" + strings.Join(t.labels, ",") + "}"
	case kOwn:
		return "own<" + t.res.name + ">"
	case kBorrow:
		return "borrow<" + t.res.name + ">"
	}
	return fmt.Sprintf("kind%d", t.kind)
}

func alignTo(n, a uint32) uint32 { return (n + a - 1) / a * a }

func discSize(n int) uint32 {
	switch {
	case n <= 1<<8:
		return 1
	case n <= 1<<16:
		return 2
	}
	return 4
}

func join(a, b coreType) coreType {
	if a == b {
		return a
	}
	if (a == ci32 && b == cf32) || (a == cf32 && b == ci32) {
		return ci32
	}
	return ci64
}

// layout computes size, alignment and flattening once; types are immutable
// after linking, and layout runs during linking, so no lock is needed.
func (t *vtype) layout() {
	if t.laidOut {
		return
	}
	switch t.kind {
	case kBool, kS8, kU8:
		t.size, t.align, t.flat = 1, 1, []coreType{ci32}
	case kS16, kU16:
		t.size, t.align, t.flat = 2, 2, []coreType{ci32}
	case kS32, kU32, kChar, kOwn, kBorrow:
		t.size, t.align, t.flat = 4, 4, []coreType{ci32}
	case kF32:
		t.size, t.align, t.flat = 4, 4, []coreType{cf32}
	case kS64, kU64:
		t.size, t.align, t.flat = 8, 8, []coreType{ci64}
	case kF64:
		t.size, t.align, t.flat = 8, 8, []coreType{cf64}
	case kString, kList:
		if t.elem != nil {
			t.elem.layout()
		}
		t.size, t.align, t.flat = 8, 4, []coreType{ci32, ci32}
	case kRecord, kTuple:
		var s uint32
		a := uint32(1)
		for _, f := range t.fields {
			f.layout()
			s = alignTo(s, f.align) + f.size
			a = max(a, f.align)
			t.flat = append(t.flat, f.flat...)
		}
		t.size, t.align = alignTo(s, a), a
	case kEnum:
		d := discSize(len(t.labels))
		t.discSize, t.size, t.align, t.flat = d, d, d, []coreType{ci32}
	case kFlags:
		n := len(t.labels)
		switch {
		case n == 0:
			t.size, t.align = 0, 1
		case n <= 8:
			t.size, t.align = 1, 1
		case n <= 16:
			t.size, t.align = 2, 2
		default:
			t.size, t.align = 4, 4
		}
		if n > 0 {
			t.flat = []coreType{ci32}
		}
	case kVariant, kOption, kResult:
		d := discSize(len(t.cases))
		a := d
		var flat []coreType
		var maxSize uint32
		for _, c := range t.cases {
			if c == nil {
				continue
			}
			c.layout()
			a = max(a, c.align)
			maxSize = max(maxSize, c.size)
			for i, ft := range c.flat {
				if i < len(flat) {
					flat[i] = join(flat[i], ft)
				} else {
					flat = append(flat, ft)
				}
			}
		}
		t.discSize = d
		t.payloadOff = alignTo(d, a)
		t.size, t.align = alignTo(t.payloadOff+maxSize, a), a
		t.flat = append([]coreType{ci32}, flat...)
	}
	t.laidOut = true
}

// scope holds one component's (or one type's) index spaces while linking.
type scope struct {
	parent *scope
	// table is the handle table of the component instance being linked:
	// every component instance, the outermost and each nested one, has
	// its own, as the canonical ABI gives each instance its own.
	table int

	types         []any // *vtype, *funcType, *instanceType, *componentType, *resourceType
	coreTypes     []any
	coreModules   []*moduleDef
	coreInstances []*coreInstance
	coreFuncs     []coreItem
	coreTables    []coreItem
	coreMemories  []coreItem
	coreGlobals   []coreItem
	funcs         []*cfunc
	instances     []*cinstance
	components    []*componentDef

	exports map[string]any
}

func (s *scope) outer(count uint32) (*scope, error) {
	o := s
	for i := uint32(0); i < count; i++ {
		if o.parent == nil {
			return nil, fmt.Errorf("outer alias reaches %d scopes up, past the outermost", count)
		}
		o = o.parent
	}
	return o, nil
}

func (s *scope) typ(i uint32) (any, error) {
	if int64(i) >= int64(len(s.types)) {
		return nil, fmt.Errorf("type index %d out of range (%d types)", i, len(s.types))
	}
	return s.types[i], nil
}
