package component

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/tetratelabs/wazero/api"

	bin "github.com/fungi-go/fungi/runtimes/wasm/component/internal/binary"
)

// The canonical ABI, between Go values and a guest's core values and memory.
//
// Go representation of WIT values:
//   bool, s8..u64 as int8..uint64, f32/f64 as float32/float64, char as rune,
//   string as string, list<u8> as []byte, other lists as []any, records and
//   tuples as []any (fields in order), variant/option/result as Variant,
//   enum as uint32 (the case index), flags as uint32 (bit i = label i),
//   own/borrow of a host resource as the Go object behind the handle.

// Variant is a variant, option (0 none, 1 some) or result (0 ok, 1 err) value.
type Variant struct {
	Case uint32
	Val  any
}

// trap is a guest fault the canonical ABI detects; it ends the call.
type trap struct{ msg string }

func (t *trap) Error() string { return "component trap: " + t.msg }

func trapf(format string, args ...any) { panic(&trap{msg: fmt.Sprintf(format, args...)}) }

// cx is one lift or lower's context: the guest memory and allocator its
// canonical options name, and the instance whose handle table it uses.
type cx struct {
	ctx      context.Context
	inst     *instance
	mem      api.Memory
	realloc  api.Function
	encoding byte
	borrows  []uint32 // borrow handles lowered into the guest for one call
	table    *handleTable
	tableIdx int // the component instance whose handles this lift or lower uses
	// transfer is set when what is lifted goes to another component
	// instance (adapter fusion) rather than being consumed by the host: an
	// own handle then moves with its children, and a borrow is lent.
	transfer bool
	lenders  []uint32  // handles in table lent to the callee of a fused call
	held     int64     // bytes charged to the instance's budget until the call returns
	ft       *funcType // the host function being called, for its labels
}

func (c *cx) read(ptr, n uint32) []byte {
	if c.mem == nil {
		trapf("the canonical options name no memory")
	}
	b, ok := c.mem.Read(ptr, n)
	if !ok {
		trapf("read of %d bytes at %#x is out of bounds (memory is %d bytes)", n, ptr, c.mem.Size())
	}
	return b
}

func (c *cx) alloc(align, size uint32) uint32 {
	if c.realloc == nil {
		trapf("the canonical options name no realloc")
	}
	r, err := c.realloc.Call(c.ctx, 0, 0, uint64(align), uint64(size))
	if err != nil {
		panic(err)
	}
	p := uint32(r[0])
	if p%align != 0 {
		trapf("realloc returned %#x, not aligned to %d", p, align)
	}
	c.read(p, size) // bounds check
	return p
}

// flatIter walks flat core values during a lift.
type flatIter struct {
	v []uint64
	i int
}

func (f *flatIter) next() uint64 {
	if f.i >= len(f.v) {
		trapf("too few core values")
	}
	x := f.v[f.i]
	f.i++
	return x
}

func (c *cx) liftFlat(t *vtype, f *flatIter) any {
	switch t.kind {
	case kBool:
		return uint32(f.next()) != 0
	case kS8:
		return int8(f.next())
	case kU8:
		return uint8(f.next())
	case kS16:
		return int16(f.next())
	case kU16:
		return uint16(f.next())
	case kS32:
		return int32(f.next())
	case kU32:
		return uint32(f.next())
	case kS64:
		return int64(f.next())
	case kU64:
		return f.next()
	case kF32:
		return math.Float32frombits(uint32(f.next()))
	case kF64:
		return math.Float64frombits(f.next())
	case kChar:
		return c.char(uint32(f.next()))
	case kString:
		p, n := uint32(f.next()), uint32(f.next())
		return c.loadString(p, n)
	case kList:
		p, n := uint32(f.next()), uint32(f.next())
		return c.loadList(t.elem, p, n)
	case kRecord, kTuple:
		out := make([]any, len(t.fields))
		for i, ft := range t.fields {
			out[i] = c.liftFlat(ft, f)
		}
		return out
	case kEnum:
		d := uint32(f.next())
		if int(d) >= len(t.labels) {
			trapf("enum discriminant %d out of range", d)
		}
		return d
	case kFlags:
		if len(t.labels) == 0 {
			return uint32(0)
		}
		return uint32(f.next()) & flagMask(len(t.labels))
	case kVariant, kOption, kResult:
		d := uint32(f.next())
		if int(d) >= len(t.cases) {
			trapf("variant discriminant %d out of range", d)
		}
		rest := f.v[f.i : f.i+len(t.flat)-1]
		f.i += len(t.flat) - 1
		ct := t.cases[d]
		if ct == nil {
			return Variant{Case: d}
		}
		// The payload's values sit in the joined slots; uint64 slots hold
		// every narrower type in their low bits, so reading them is enough.
		return Variant{Case: d, Val: c.liftFlat(ct, &flatIter{v: rest})}
	case kOwn, kBorrow:
		return c.liftHandle(t, uint32(f.next()))
	}
	trapf("cannot lift kind %d", t.kind)
	return nil
}

func flagMask(n int) uint32 {
	if n >= 32 {
		return math.MaxUint32
	}
	return 1<<n - 1
}

func (c *cx) char(v uint32) rune {
	if v >= 0x110000 || (v >= 0xd800 && v <= 0xdfff) {
		trapf("char %#x is not a Unicode scalar value", v)
	}
	return rune(v)
}

// guestRep is a guest-defined resource between a lift and a lower: its
// representation, which only the component instance that defined it reads.
type guestRep uint32

// liftHandle is lift_own and lift_borrow: an own handle leaves the table
// (its resource moves to the callee), a borrow stays and, when it is lent
// to another component instance, cannot be dropped until the call returns.
func (c *cx) liftHandle(t *vtype, h uint32) any {
	pe := c.table.get(h, t.res)
	if t.kind == kBorrow {
		if c.transfer {
			pe.lent++
			c.lenders = append(c.lenders, h)
		}
		if t.res.guest {
			return guestRep(pe.rep)
		}
		return pe.obj
	}
	e := *pe
	if !e.own {
		trapf("handle %d is a borrow and cannot be passed as own", h)
	}
	if e.lent > 0 {
		trapf("handle %d is lent out and cannot be moved", h)
	}
	if !c.transfer {
		checkNoChildren(e.obj, t.res.name)
	}
	c.table.remove(h)
	if t.res.guest {
		return guestRep(e.rep)
	}
	return e.obj
}

// endLends returns the borrows lent for a fused call once it has returned.
func (c *cx) endLends() {
	for _, h := range c.lenders {
		c.table.entries[h].lent--
	}
	c.lenders = nil
}

func (c *cx) loadString(p, n uint32) string {
	switch c.encoding {
	case bin.OptUTF16:
		return c.loadUTF16(p, n)
	case bin.OptLatin1:
		if n&(1<<31) != 0 {
			return c.loadUTF16(p, n&^(1<<31))
		}
		b := c.read(p, n)
		c.hold(5 * int64(n)) // the runes, then the string
		r := make([]rune, len(b))
		for i, x := range b {
			r[i] = rune(x)
		}
		return string(r)
	}
	b := c.read(p, n)
	if !utf8.Valid(b) {
		trapf("string at %#x is not UTF-8", p)
	}
	c.hold(int64(n))
	return string(b)
}

func (c *cx) loadUTF16(p, n uint32) string {
	if uint64(n)*2 > uint64(c.mem.Size()) {
		trapf("UTF-16 string of %d units is larger than memory", n)
	}
	b := c.read(p, n*2)
	c.hold(2*int64(n) + 3*int64(n)) // the units, then the string
	u := make([]uint16, n)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func (c *cx) loadList(e *vtype, p, n uint32) any {
	e.layout()
	total := uint64(n) * uint64(e.size)
	if c.mem == nil || total > uint64(c.mem.Size()) {
		trapf("list of %d elements does not fit in memory", n)
	}
	if e.kind == kU8 {
		b := c.read(p, n)
		c.hold(int64(n))
		return append([]byte(nil), b...)
	}
	if p%e.align != 0 {
		trapf("list at %#x is not aligned to %d", p, e.align)
	}
	c.read(p, uint32(total))
	c.hold(int64(n) * listElemCost)
	out := make([]any, n)
	for i := range out {
		out[i] = c.load(e, p+uint32(i)*e.size)
	}
	return out
}

func (c *cx) load(t *vtype, p uint32) any {
	t.layout()
	b := c.read(p, t.size)
	le := binary.LittleEndian
	switch t.kind {
	case kBool:
		return b[0] != 0
	case kS8:
		return int8(b[0])
	case kU8:
		return b[0]
	case kS16:
		return int16(le.Uint16(b))
	case kU16:
		return le.Uint16(b)
	case kS32:
		return int32(le.Uint32(b))
	case kU32:
		return le.Uint32(b)
	case kS64:
		return int64(le.Uint64(b))
	case kU64:
		return le.Uint64(b)
	case kF32:
		return math.Float32frombits(le.Uint32(b))
	case kF64:
		return math.Float64frombits(le.Uint64(b))
	case kChar:
		return c.char(le.Uint32(b))
	case kString:
		return c.loadString(le.Uint32(b), le.Uint32(b[4:]))
	case kList:
		return c.loadList(t.elem, le.Uint32(b), le.Uint32(b[4:]))
	case kRecord, kTuple:
		c.hold(16 * int64(len(t.fields)))
		out := make([]any, len(t.fields))
		var off uint32
		for i, ft := range t.fields {
			off = alignTo(off, ft.align)
			out[i] = c.load(ft, p+off)
			off += ft.size
		}
		return out
	case kEnum, kVariant, kOption, kResult:
		var d uint32
		switch t.discSize {
		case 1:
			d = uint32(b[0])
		case 2:
			d = uint32(le.Uint16(b))
		default:
			d = le.Uint32(b)
		}
		if t.kind == kEnum {
			if int(d) >= len(t.labels) {
				trapf("enum discriminant %d out of range", d)
			}
			return d
		}
		if int(d) >= len(t.cases) {
			trapf("variant discriminant %d out of range", d)
		}
		if t.cases[d] == nil {
			return Variant{Case: d}
		}
		return Variant{Case: d, Val: c.load(t.cases[d], p+t.payloadOff)}
	case kFlags:
		var v uint32
		switch t.size {
		case 0:
		case 1:
			v = uint32(b[0])
		case 2:
			v = uint32(le.Uint16(b))
		default:
			v = le.Uint32(b)
		}
		return v & flagMask(len(t.labels))
	case kOwn, kBorrow:
		return c.liftHandle(t, le.Uint32(b))
	}
	trapf("cannot load kind %d", t.kind)
	return nil
}

// lowerFlat appends v's flat core values for t.
func (c *cx) lowerFlat(t *vtype, v any, out []uint64) []uint64 {
	switch t.kind {
	case kBool:
		if v.(bool) {
			return append(out, 1)
		}
		return append(out, 0)
	case kS8:
		return append(out, uint64(uint32(int32(v.(int8)))))
	case kU8:
		return append(out, uint64(v.(uint8)))
	case kS16:
		return append(out, uint64(uint32(int32(v.(int16)))))
	case kU16:
		return append(out, uint64(v.(uint16)))
	case kS32:
		return append(out, uint64(uint32(v.(int32))))
	case kU32:
		return append(out, uint64(v.(uint32)))
	case kS64:
		return append(out, uint64(v.(int64)))
	case kU64:
		return append(out, v.(uint64))
	case kF32:
		return append(out, uint64(math.Float32bits(v.(float32))))
	case kF64:
		return append(out, math.Float64bits(v.(float64)))
	case kChar:
		return append(out, uint64(v.(rune)))
	case kString:
		p, n := c.storeString(v.(string))
		return append(out, uint64(p), uint64(n))
	case kList:
		p, n := c.storeList(t.elem, v)
		return append(out, uint64(p), uint64(n))
	case kRecord, kTuple:
		vs := v.([]any)
		for i, ft := range t.fields {
			out = c.lowerFlat(ft, vs[i], out)
		}
		return out
	case kEnum, kFlags:
		if len(t.flat) == 0 {
			return out
		}
		return append(out, uint64(v.(uint32)))
	case kVariant, kOption, kResult:
		vv := v.(Variant)
		out = append(out, uint64(vv.Case))
		start := len(out)
		if ct := t.cases[vv.Case]; ct != nil {
			out = c.lowerFlat(ct, vv.Val, out)
		}
		for len(out) < start+len(t.flat)-1 {
			out = append(out, 0)
		}
		return out
	case kOwn, kBorrow:
		return append(out, uint64(c.lowerHandle(t, v)))
	}
	trapf("cannot lower kind %d", t.kind)
	return nil
}

// lowerHandle is lower_own and lower_borrow: an own resource gets a new
// handle in this instance's table; a borrow of a resource this instance
// defined is its rep, any other borrow a handle that lives for the call.
func (c *cx) lowerHandle(t *vtype, v any) uint32 {
	e := handleEntry{res: t.res, obj: v, own: t.kind == kOwn}
	if t.res.guest {
		rep, ok := v.(guestRep)
		if !ok {
			trapf("a %s can only come from the component instance that defines it", t.res.name)
		}
		if t.kind == kBorrow && c.tableIdx == t.res.impl {
			return uint32(rep)
		}
		e = handleEntry{res: t.res, rep: uint32(rep), own: t.kind == kOwn}
	}
	if e.own {
		return c.table.add(e)
	}
	e.scope = c
	h := c.table.add(e)
	c.borrows = append(c.borrows, h)
	return h
}

func (c *cx) storeString(s string) (uint32, uint32) {
	switch c.encoding {
	case bin.OptUTF16, bin.OptLatin1:
		u := utf16.Encode([]rune(s))
		p := c.alloc(2, uint32(2*len(u)))
		b := c.read(p, uint32(2*len(u)))
		for i, x := range u {
			binary.LittleEndian.PutUint16(b[2*i:], x)
		}
		n := uint32(len(u))
		if c.encoding == bin.OptLatin1 {
			n |= 1 << 31
		}
		return p, n
	}
	p := c.alloc(1, uint32(len(s)))
	copy(c.read(p, uint32(len(s))), s)
	return p, uint32(len(s))
}

func (c *cx) storeList(e *vtype, v any) (uint32, uint32) {
	e.layout()
	if b, ok := v.([]byte); ok {
		p := c.alloc(1, uint32(len(b)))
		copy(c.read(p, uint32(len(b))), b)
		return p, uint32(len(b))
	}
	vs := v.([]any)
	total := uint64(len(vs)) * uint64(e.size)
	if total > math.MaxUint32 {
		trapf("list of %d elements is too large", len(vs))
	}
	p := c.alloc(e.align, uint32(total))
	for i, x := range vs {
		c.store(e, x, p+uint32(i)*e.size)
	}
	return p, uint32(len(vs))
}

func (c *cx) store(t *vtype, v any, p uint32) {
	t.layout()
	b := c.read(p, t.size)
	le := binary.LittleEndian
	switch t.kind {
	case kBool:
		b[0] = 0
		if v.(bool) {
			b[0] = 1
		}
	case kS8:
		b[0] = byte(v.(int8))
	case kU8:
		b[0] = v.(uint8)
	case kS16:
		le.PutUint16(b, uint16(v.(int16)))
	case kU16:
		le.PutUint16(b, v.(uint16))
	case kS32:
		le.PutUint32(b, uint32(v.(int32)))
	case kU32:
		le.PutUint32(b, v.(uint32))
	case kS64:
		le.PutUint64(b, uint64(v.(int64)))
	case kU64:
		le.PutUint64(b, v.(uint64))
	case kF32:
		le.PutUint32(b, math.Float32bits(v.(float32)))
	case kF64:
		le.PutUint64(b, math.Float64bits(v.(float64)))
	case kChar:
		le.PutUint32(b, uint32(v.(rune)))
	case kString:
		sp, n := c.storeString(v.(string))
		b = c.read(p, 8) // the allocation may have grown memory
		le.PutUint32(b, sp)
		le.PutUint32(b[4:], n)
	case kList:
		lp, n := c.storeList(t.elem, v)
		b = c.read(p, 8)
		le.PutUint32(b, lp)
		le.PutUint32(b[4:], n)
	case kRecord, kTuple:
		vs := v.([]any)
		var off uint32
		for i, ft := range t.fields {
			off = alignTo(off, ft.align)
			c.store(ft, vs[i], p+off)
			off += ft.size
		}
	case kEnum, kVariant, kOption, kResult:
		var d uint32
		var payload any
		if t.kind == kEnum {
			d = v.(uint32)
		} else {
			vv := v.(Variant)
			d, payload = vv.Case, vv.Val
		}
		switch t.discSize {
		case 1:
			b[0] = byte(d)
		case 2:
			le.PutUint16(b, uint16(d))
		default:
			le.PutUint32(b, d)
		}
		if t.kind != kEnum && t.cases[d] != nil {
			c.store(t.cases[d], payload, p+t.payloadOff)
		}
	case kFlags:
		x := v.(uint32)
		switch t.size {
		case 0:
		case 1:
			b[0] = byte(x)
		case 2:
			le.PutUint16(b, uint16(x))
		default:
			le.PutUint32(b, x)
		}
	case kOwn, kBorrow:
		le.PutUint32(b, c.lowerHandle(t, v))
	default:
		trapf("cannot store kind %d", t.kind)
	}
}

// tupleOf is the tuple type of a function's parameters or results.
func tupleOf(ts []*vtype) *vtype {
	t := &vtype{kind: kTuple, fields: ts}
	t.layout()
	return t
}
