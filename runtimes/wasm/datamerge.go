package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Go's linker writes one active data segment per run of non-zero bytes, so a
// 6 MB guest carries thousands of segments. Instantiation evaluates and copies
// each one, which dominated the per-request cost of a fresh instance. Merging
// neighbouring active segments (gaps filled with zeros, which is what fresh
// memory holds anyway) keeps the module's meaning and makes instantiation one
// large copy. Modules with passive segments or memory.init are left alone,
// because their segment indices carry meaning.

const (
	sectionData      = 11
	sectionDataCount = 12
	// mergeGap is the largest run of zeros written out to join two segments;
	// a larger gap starts a new segment so sparse data stays sparse.
	mergeGap = 64 << 10
	// minSegmentBytes is the smallest encoding of a segment the merge
	// accepts (flags, i32.const, one-byte offset, end, one-byte size): a
	// segment count is checked against it before anything is allocated, so
	// a count read from a hostile binary cannot ask for more memory than the
	// binary's own bytes could describe.
	minSegmentBytes = 5
)

type dataSegment struct {
	offset uint32
	bytes  []byte
}

// mergeDataSegments returns bin with its active data segments merged, or bin
// unchanged (and ok false) when the module's layout does not allow it. Every
// count and size in the binary is checked against the bytes that remain
// before it is used, and the zeros written to fill gaps are bounded by the
// module's own size, so the result is never more than about twice the input.
func mergeDataSegments(bin []byte) (out []byte, ok bool, err error) {
	if len(bin) < 8 {
		return nil, false, errors.New("not a WebAssembly module: too short")
	}
	pos := 8
	for pos < len(bin) {
		start := pos
		id := bin[pos]
		size, n, err := readU32(bin, pos+1)
		if err != nil {
			return nil, false, fmt.Errorf("section header at byte %d: %w", pos, err)
		}
		body := pos + 1 + n
		if uint64(size) > uint64(len(bin)-body) {
			return nil, false, fmt.Errorf("section %d at byte %d claims %d bytes but only %d remain", id, pos, size, len(bin)-body)
		}
		end := body + int(size)
		if id == sectionDataCount {
			// A data count section means bulk-memory instructions may name
			// segments by index.
			return bin, false, nil
		}
		if id == sectionData {
			segs, ok, err := parseActiveSegments(bin[body:end])
			if err != nil {
				return nil, false, fmt.Errorf("data section at byte %d: %w", pos, err)
			}
			if !ok {
				return bin, false, nil
			}
			merged, ok := mergeSegments(segs, len(bin))
			if !ok {
				return bin, false, nil
			}
			section := encodeDataSection(merged)
			out = make([]byte, 0, len(bin)-(end-start)+len(section))
			out = append(out, bin[:start]...)
			out = append(out, section...)
			out = append(out, bin[end:]...)
			return out, true, nil
		}
		pos = end
	}
	return bin, false, nil
}

// parseActiveSegments reads a data section's body. ok is false when a
// segment has a form the merge does not handle (passive, another memory, an
// offset that is not a constant); err is set when the section is malformed.
func parseActiveSegments(b []byte) ([]dataSegment, bool, error) {
	count, n, err := readU32(b, 0)
	if err != nil {
		return nil, false, fmt.Errorf("segment count: %w", err)
	}
	pos := n
	if room := uint64(len(b)-pos) / minSegmentBytes; uint64(count) > room {
		return nil, false, fmt.Errorf("it claims %d segments but its %d bytes hold at most %d", count, len(b)-pos, room)
	}
	segs := make([]dataSegment, 0, count)
	for i := uint32(0); i < count; i++ {
		flags, n, err := readU32(b, pos)
		if err != nil {
			return nil, false, fmt.Errorf("segment %d: %w", i, err)
		}
		pos += n
		if flags != 0 {
			return nil, false, nil // passive, or explicit memory index
		}
		// Only the plain form `i32.const N; end` is merged.
		if pos >= len(b) || b[pos] != 0x41 {
			return nil, false, nil
		}
		off, n, err := readS32(b, pos+1)
		if err != nil {
			return nil, false, fmt.Errorf("segment %d offset: %w", i, err)
		}
		pos += 1 + n
		if pos >= len(b) || b[pos] != 0x0b {
			return nil, false, nil
		}
		pos++
		size, n, err := readU32(b, pos)
		if err != nil {
			return nil, false, fmt.Errorf("segment %d size: %w", i, err)
		}
		pos += n
		if uint64(size) > uint64(len(b)-pos) {
			return nil, false, fmt.Errorf("segment %d claims %d bytes but only %d remain in the section", i, size, len(b)-pos)
		}
		segs = append(segs, dataSegment{offset: uint32(off), bytes: b[pos : pos+int(size)]})
		pos += int(size)
	}
	if pos != len(b) {
		return nil, false, fmt.Errorf("%d bytes follow the last of its %d segments", len(b)-pos, count)
	}
	return segs, true, nil
}

// mergeSegments joins segments that lie close together. ok is false when
// two segments overlap: a later segment overwrites an earlier one, and
// sorting would change which bytes win. zeroBudget bounds the zeros written
// into gaps in total; once it is spent, segments stay apart.
func mergeSegments(segs []dataSegment, zeroBudget int) (merged []dataSegment, ok bool) {
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].offset < segs[j].offset })
	for i := 1; i < len(segs); i++ {
		if uint64(segs[i].offset) < uint64(segs[i-1].offset)+uint64(len(segs[i-1].bytes)) {
			return nil, false
		}
	}
	budget := uint64(zeroBudget)
	var out []dataSegment
	for _, s := range segs {
		if len(out) > 0 {
			last := &out[len(out)-1]
			lastEnd := uint64(last.offset) + uint64(len(last.bytes))
			if gap := uint64(s.offset) - lastEnd; gap <= mergeGap && gap <= budget {
				budget -= gap
				// append grows geometrically, so merging stays linear.
				last.bytes = append(last.bytes, make([]byte, gap)...)
				last.bytes = append(last.bytes, s.bytes...)
				continue
			}
		}
		out = append(out, dataSegment{offset: s.offset, bytes: append([]byte(nil), s.bytes...)})
	}
	return out, true
}

func encodeDataSection(segs []dataSegment) []byte {
	var body []byte
	body = binary.AppendUvarint(body, uint64(len(segs)))
	for _, s := range segs {
		body = append(body, 0x00, 0x41)
		body = appendS32(body, int32(s.offset))
		body = append(body, 0x0b)
		body = binary.AppendUvarint(body, uint64(len(s.bytes)))
		body = append(body, s.bytes...)
	}
	out := []byte{sectionData}
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

func readU32(b []byte, pos int) (uint32, int, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		if pos+i >= len(b) {
			return 0, 0, errors.New("truncated LEB128")
		}
		c := b[pos+i]
		if i == 4 && c > 0x0f {
			return 0, 0, errors.New("LEB128 value does not fit in 32 bits")
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("LEB128 too long")
}

func readS32(b []byte, pos int) (int32, int, error) {
	var v int64
	var shift uint
	for i := 0; i < 5; i++ {
		if pos+i >= len(b) {
			return 0, 0, errors.New("truncated LEB128")
		}
		c := b[pos+i]
		if i == 4 && c&0x80 == 0 && c > 0x07 && c < 0x78 {
			return 0, 0, errors.New("signed LEB128 value does not fit in 32 bits")
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return int32(v), i + 1, nil
		}
	}
	return 0, 0, errors.New("LEB128 too long")
}

func appendS32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// maxLocalsPerFunction is the most locals one function may declare, the
// limit browsers' engines apply. wazero allocates a slot per declared local
// before it reads the body, and six bytes can declare 2^32-1 of them.
const maxLocalsPerFunction = 50000

// checkModuleBounds walks the module's structure and refuses it when a
// count or size it holds is larger than the bytes that follow could hold.
// wazero's decoder allocates by such counts before it reads the elements,
// so a module of a few bytes could otherwise ask for gigabytes and end the
// process; after this check every allocation the decoder makes is bounded
// by the module's own size.
func checkModuleBounds(bin []byte) error {
	if len(bin) < 8 {
		return errors.New("not a WebAssembly module: too short")
	}
	c := &cursor{b: bin, pos: 8}
	for !c.done() {
		at := c.pos
		id := c.byte()
		size := c.u32()
		if c.err != nil {
			return fmt.Errorf("section header at byte %d: %w", at, c.err)
		}
		if uint64(size) > uint64(c.left()) {
			return fmt.Errorf("section %d at byte %d claims %d bytes but only %d remain", id, at, size, c.left())
		}
		body := &cursor{b: bin[:c.pos+int(size)], pos: c.pos}
		c.pos += int(size)
		if err := checkSection(id, body); err != nil {
			return fmt.Errorf("section %d at byte %d: %w", id, at, err)
		}
	}
	return nil
}

func checkSection(id byte, c *cursor) error {
	switch id {
	case 0: // custom
		if name := c.name(); c.err == nil && name == "name" {
			checkNameSection(c)
		}
		return c.err
	case 8, 12: // start, data count
		c.u32()
		return c.err
	}
	n := c.count(1)
	for i := uint32(0); i < n && c.err == nil; i++ {
		switch id {
		case 1: // type
			if c.peek() == 0x4e { // rec group
				c.byte()
				for j, m := uint32(0), c.count(1); j < m && c.err == nil; j++ {
					c.funcType()
				}
			} else {
				c.funcType()
			}
		case 2: // import
			c.name()
			c.name()
			c.externType()
		case 3: // function
			c.u32()
		case 4: // table
			c.tableType()
		case 5: // memory
			c.limits()
		case 6: // global
			c.valType()
			c.byte()
			c.constExpr()
		case 7: // export
			c.name()
			c.byte()
			c.u32()
		case 9: // element
			c.elementSegment()
		case 10: // code
			c.codeEntry()
		case 11: // data
			switch flags := c.u32(); flags {
			case 0:
				c.constExpr()
			case 1:
			case 2:
				c.u32()
				c.constExpr()
			default:
				c.fail("data segment %d has unknown flags %d", i, flags)
			}
			c.skip(c.count(1))
		case 13: // tag
			c.byte()
			c.u32()
		default:
			return fmt.Errorf("unknown section id %d", id)
		}
	}
	return c.err
}

// checkNameSection bounds the "name" section's maps, which wazero
// allocates by their declared length.
func checkNameSection(c *cursor) {
	for !c.done() && c.err == nil {
		sub := c.byte()
		size := c.u32()
		if c.err == nil && uint64(size) > uint64(c.left()) {
			c.fail("name subsection %d claims %d bytes but only %d remain", sub, size, c.left())
			return
		}
		s := &cursor{b: c.b[:c.pos+int(size)], pos: c.pos}
		c.pos += int(size)
		switch sub {
		case 0:
			s.name()
		case 1:
			for i, n := uint32(0), s.count(2); i < n && s.err == nil; i++ {
				s.u32()
				s.name()
			}
		case 2:
			for i, n := uint32(0), s.count(2); i < n && s.err == nil; i++ {
				s.u32()
				for j, m := uint32(0), s.count(2); j < m && s.err == nil; j++ {
					s.u32()
					s.name()
				}
			}
		}
		if s.err != nil {
			c.err = s.err
		}
	}
}

// cursor reads a module's bytes; the first error sticks and every later
// read returns zero, so a walk can check c.err once per element.
type cursor struct {
	b   []byte
	pos int
	err error
}

func (c *cursor) done() bool { return c.err != nil || c.pos >= len(c.b) }
func (c *cursor) left() int  { return len(c.b) - c.pos }

func (c *cursor) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

func (c *cursor) peek() byte {
	if c.err != nil || c.pos >= len(c.b) {
		c.fail("truncated at byte %d", c.pos)
		return 0
	}
	return c.b[c.pos]
}

func (c *cursor) byte() byte {
	v := c.peek()
	if c.err == nil {
		c.pos++
	}
	return v
}

func (c *cursor) skip(n uint32) {
	if c.err == nil && uint64(n) > uint64(c.left()) {
		c.fail("%d bytes claimed but only %d remain", n, c.left())
	}
	if c.err == nil {
		c.pos += int(n)
	}
}

func (c *cursor) u32() uint32 {
	if c.err != nil {
		return 0
	}
	v, n, err := readU32(c.b, c.pos)
	if err != nil {
		c.err = fmt.Errorf("byte %d: %w", c.pos, err)
		return 0
	}
	c.pos += n
	return v
}

// leb skips a LEB128 number of at most maxBytes bytes (s33, s64).
func (c *cursor) leb(maxBytes int) {
	for i := 0; i < maxBytes; i++ {
		if c.byte()&0x80 == 0 || c.err != nil {
			return
		}
	}
	c.fail("LEB128 too long at byte %d", c.pos)
}

// count reads a vector length and refuses it when each element, at least
// minBytes long, could not fit in what remains.
func (c *cursor) count(minBytes int) uint32 {
	n := c.u32()
	if c.err == nil && uint64(n)*uint64(minBytes) > uint64(c.left()) {
		c.fail("a vector claims %d elements but only %d bytes remain", n, c.left())
		return 0
	}
	return n
}

func (c *cursor) name() string {
	n := c.count(1)
	if c.err != nil {
		return ""
	}
	s := string(c.b[c.pos : c.pos+int(n)])
	c.pos += int(n)
	return s
}

func (c *cursor) valType() {
	switch b := c.byte(); b {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69:
	case 0x63, 0x64: // (ref null ht), (ref ht)
		c.leb(5)
	default:
		c.fail("unknown value type 0x%x at byte %d", b, c.pos-1)
	}
}

func (c *cursor) funcType() {
	if b := c.byte(); c.err == nil && b != 0x60 {
		c.fail("function type at byte %d starts with 0x%x, not 0x60", c.pos-1, b)
		return
	}
	for range 2 { // params, results
		for i, n := uint32(0), c.count(1); i < n && c.err == nil; i++ {
			c.valType()
		}
	}
}

func (c *cursor) limits() {
	switch flags := c.byte(); flags {
	case 0, 2:
		c.u32()
	case 1, 3:
		c.u32()
		c.u32()
	default:
		c.fail("unknown limits flags 0x%x at byte %d", flags, c.pos-1)
	}
}

func (c *cursor) tableType() {
	c.valType()
	c.limits()
}

func (c *cursor) externType() {
	switch kind := c.byte(); kind {
	case 0:
		c.u32()
	case 1:
		c.tableType()
	case 2:
		c.limits()
	case 3:
		c.valType()
		c.byte()
	case 4:
		c.byte()
		c.u32()
	default:
		c.fail("unknown import kind 0x%x at byte %d", kind, c.pos-1)
	}
}

// constExpr skips a constant expression: the instructions wazero accepts
// there, up to end.
func (c *cursor) constExpr() {
	for c.err == nil {
		switch op := c.byte(); op {
		case 0x0b:
			return
		case 0x41:
			c.leb(5)
		case 0x42:
			c.leb(10)
		case 0x43:
			c.skip(4)
		case 0x44:
			c.skip(8)
		case 0x23, 0xd2: // global.get, ref.func
			c.u32()
		case 0xd0: // ref.null heap type
			c.leb(5)
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const arithmetic
		case 0xfd:
			if sub := c.u32(); c.err == nil && sub != 12 {
				c.fail("vector opcode %d in a constant expression", sub)
			}
			c.skip(16)
		default:
			if c.err == nil {
				c.fail("opcode 0x%x at byte %d in a constant expression", op, c.pos-1)
			}
		}
	}
}

func (c *cursor) elementSegment() {
	flags := c.u32()
	if c.err != nil {
		return
	}
	if flags > 7 {
		c.fail("element segment flags %d", flags)
		return
	}
	if flags&2 != 0 && flags&1 == 0 { // explicit table index
		c.u32()
	}
	if flags&1 == 0 { // active: offset
		c.constExpr()
	}
	exprs := flags&4 != 0
	if flags&3 != 0 { // element kind or reference type
		if exprs {
			c.valType()
		} else {
			c.byte()
		}
	}
	for i, n := uint32(0), c.count(1); i < n && c.err == nil; i++ {
		if exprs {
			c.constExpr()
		} else {
			c.u32()
		}
	}
}

func (c *cursor) codeEntry() {
	size := c.u32()
	if c.err == nil && uint64(size) > uint64(c.left()) {
		c.fail("a function body claims %d bytes but only %d remain", size, c.left())
		return
	}
	body := &cursor{b: c.b[:c.pos+int(size)], pos: c.pos}
	c.pos += int(size)
	var locals uint64
	for i, n := uint32(0), body.count(2); i < n && body.err == nil; i++ {
		locals += uint64(body.u32())
		body.valType()
	}
	if body.err == nil && locals > maxLocalsPerFunction {
		body.fail("a function declares %d locals; at most %d are accepted", locals, maxLocalsPerFunction)
	}
	if body.err != nil {
		c.err = body.err
	}
}
