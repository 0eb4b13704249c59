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
)

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

func decodeSections(r *reader, depth int) (*Component, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("components nested deeper than %d", MaxDepth)
	}
	c := &Component{}
	for r.left() > 0 {
		id, size := r.readByte(), r.readU32()
		if r.err != nil {
			return nil, r.err
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
		n := r.readName()
		if r.err != nil {
			return r.err
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
	n := r.readCount(1)
	for i := 0; i < n && r.err == nil; i++ {
		var d any
		var err error
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
			im := &ImportDef{}
			im.Name, _ = r.externName()
			im.Desc, err = r.externDesc()
			d = im
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
	return r.err
}
