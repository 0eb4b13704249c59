package binary

import (
	"errors"
	"os"
	"testing"
)

// After the first failed read the reader keeps that error, stays where it
// failed and reads only zeros, so a decoder that checks once reports the
// first problem at its offset.
func TestStickyReaderKeepsFirstError(t *testing.T) {
	r := &reader{b: []byte{0x05, 0x80}} // 5, then an unterminated LEB128
	if b := r.readByte(); b != 5 || r.err != nil {
		t.Fatalf("readByte = %d, %v", b, r.err)
	}
	if v := r.readU32(); v != 0 || !errors.Is(r.err, errEOF) {
		t.Fatalf("readU32 on a cut LEB128 = %d, err %v; want 0 and errEOF", v, r.err)
	}
	off := r.off
	r.failf("a later problem")
	if r.readByte() != 0 || r.readCount(1) != 0 || r.readName() != "" || r.off != off {
		t.Errorf("reads after the error returned values or moved from %d to %d", off, r.off)
	}
	if !errors.Is(r.err, errEOF) {
		t.Errorf("err = %v, want the first one (errEOF)", r.err)
	}
}

// Every cut of a real component is an error, never a component: a sticky
// read that dropped its error would decode a prefix as if it were whole.
func TestDecodeRefusesEveryCut(t *testing.T) {
	files := corpusFiles(t)
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(b); err != nil {
		t.Fatal(err)
	}
	// Skip the core module bytes: cuts inside them are checked by wazero.
	b = withoutCoreModules(b)
	if _, err := Decode(b); err != nil {
		t.Fatal(err)
	}
	// A cut at a section boundary is a smaller, whole component.
	whole := map[int]bool{}
	for r := (&reader{b: b, off: 8}); r.left() > 0; {
		whole[r.off] = true
		r.readByte()
		r.off += int(r.readU32())
	}
	step := max(1, len(b)/4000)
	for n := 8; n < len(b); n += step {
		if whole[n] {
			continue
		}
		if _, err := Decode(b[:n]); err == nil {
			t.Fatalf("%d of %d bytes decoded without an error", n, len(b))
		}
	}
}
