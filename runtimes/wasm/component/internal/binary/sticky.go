package binary

import "fmt"

// fail keeps err as the reader's error unless it already has one: the
// first error is the one reported, with the offset it happened at.
func (r *reader) fail(err error) {
	if r.err == nil && err != nil {
		r.err = err
	}
}

// failf is fail with a formatted error.
func (r *reader) failf(format string, args ...any) {
	r.fail(fmt.Errorf(format, args...))
}

// readByte is byte with a sticky error.
func (r *reader) readByte() byte {
	if r.err != nil {
		return 0
	}
	b, err := r.byte()
	r.fail(err)
	return b
}

// readU32 is u32 with a sticky error.
func (r *reader) readU32() uint32 {
	if r.err != nil {
		return 0
	}
	v, err := r.u32()
	r.fail(err)
	return v
}

// readCount is count with a sticky error; it is 0 after one, so nothing
// is allocated for a count that was not read.
func (r *reader) readCount(min int) int {
	if r.err != nil {
		return 0
	}
	n, err := r.count(min)
	r.fail(err)
	return n
}

// readName is name with a sticky error.
func (r *reader) readName() string {
	if r.err != nil {
		return ""
	}
	s, err := r.name()
	r.fail(err)
	return s
}
