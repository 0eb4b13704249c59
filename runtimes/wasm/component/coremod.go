package component

import (
	"errors"
	"fmt"
)

// rewriteImports returns a copy of a core module whose import section names,
// for each import, the planned core instance (or the host module) and export
// that provide it. wazero then links the modules directly, with no Go in
// between, through an import resolver that maps those names per instance.
func rewriteImports(mod []byte, resolve func(mod, field string, kind byte) (coreItem, error)) ([]byte, error) {
	if len(mod) < 8 {
		return nil, errors.New("core module shorter than its preamble")
	}
	out := make([]byte, 0, len(mod)+256)
	out = append(out, mod[:8]...)
	r := &modReader{b: mod, off: 8}
	for r.off < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		if uint64(size) > uint64(len(r.b)-r.off) {
			return nil, fmt.Errorf("core module section %d of %d bytes runs past the end", id, size)
		}
		body := r.b[r.off : r.off+int(size)]
		r.off += int(size)
		if id == 0 && isDWARF(body) {
			continue
		}
		if id != 2 {
			out = append(out, id)
			out = appendU32(out, size)
			out = append(out, body...)
			continue
		}
		nb, err := rewriteImportSection(body, resolve)
		if err != nil {
			return nil, fmt.Errorf("core module import section: %w", err)
		}
		out = append(out, 2)
		out = appendU32(out, uint32(len(nb)))
		out = append(out, nb...)
	}
	return out, nil
}

// isDWARF reports whether a custom section carries DWARF (.debug_*). fungi
// drops it: on every trap wazero walks a module's DWARF to put source lines
// in the stack trace, which in a 2 MB component costs 100-300 ms a trapped
// request, against a millisecond without; the trap still names each
// function (the name section stays).
func isDWARF(body []byte) bool {
	r := &modReader{b: body}
	name, err := r.name()
	return err == nil && len(name) > 7 && name[:7] == ".debug_"
}

func rewriteImportSection(body []byte, resolve func(mod, field string, kind byte) (coreItem, error)) ([]byte, error) {
	r := &modReader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if uint64(n)*4 > uint64(len(body)) {
		return nil, fmt.Errorf("%d imports in %d bytes", n, len(body))
	}
	out := appendU32(make([]byte, 0, len(body)+int(n)*8), n)
	for i := uint32(0); i < n; i++ {
		mod, err := r.name()
		if err != nil {
			return nil, err
		}
		field, err := r.name()
		if err != nil {
			return nil, err
		}
		start := r.off
		kind, err := r.byte()
		if err != nil {
			return nil, err
		}
		if err := r.skipImportDesc(kind); err != nil {
			return nil, fmt.Errorf("import %q.%q: %w", mod, field, err)
		}
		it, err := resolve(mod, field, kind)
		if err != nil {
			return nil, err
		}
		out = appendName(out, it.module())
		out = appendName(out, it.name)
		out = append(out, body[start:r.off]...)
	}
	if r.off != len(body) {
		return nil, errors.New("bytes left after the imports")
	}
	return out, nil
}

type modReader struct {
	b   []byte
	off int
}

func (r *modReader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errors.New("core module ends early")
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *modReader) leb() (uint64, error) {
	var v uint64
	for shift := 0; shift < 70; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("LEB128 too long")
}

func (r *modReader) u32() (uint32, error) {
	v, err := r.leb()
	if v > 0xffffffff {
		return 0, errors.New("u32 out of range")
	}
	return uint32(v), err
}

func (r *modReader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	if uint64(n) > uint64(len(r.b)-r.off) {
		return "", errors.New("name runs past the end")
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s, nil
}

func (r *modReader) skipLimits() error {
	f, err := r.byte()
	if err != nil {
		return err
	}
	if _, err := r.leb(); err != nil {
		return err
	}
	if f&1 != 0 {
		_, err = r.leb()
	}
	return err
}

func (r *modReader) skipImportDesc(kind byte) error {
	switch kind {
	case 0x00: // func
		_, err := r.u32()
		return err
	case 0x01: // table
		t, err := r.byte()
		if err != nil {
			return err
		}
		if t == 0x63 || t == 0x64 {
			if _, err := r.leb(); err != nil {
				return err
			}
		}
		return r.skipLimits()
	case 0x02:
		return r.skipLimits()
	case 0x03:
		if _, err := r.byte(); err != nil {
			return err
		}
		_, err := r.byte()
		return err
	}
	return fmt.Errorf("import kind %#x is not supported", kind)
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}
