package binary

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// reader reads a binary in two styles: the primitives below return their
// error; the sticky ones (sticky.go) keep the first error in err and
// return zero values after it, so a definition is read straight through
// and checked once, as wazero's internal/wasm/binary does.
type reader struct {
	b   []byte
	off int
	err error // the first error of a sticky read
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
