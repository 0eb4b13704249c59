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
)

type dataSegment struct {
	offset uint32
	bytes  []byte
}

// mergeDataSegments returns bin with its active data segments merged, or bin
// unchanged (and ok false) when the module's layout does not allow it.
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
		end := body + int(size)
		if end > len(bin) {
			return nil, false, fmt.Errorf("section %d at byte %d runs past the end", id, pos)
		}
		if id == sectionDataCount {
			// A data count section means bulk-memory instructions may name
			// segments by index.
			return bin, false, nil
		}
		if id == sectionData {
			segs, ok, err := parseActiveSegments(bin[body:end])
			if err != nil || !ok {
				return bin, false, err
			}
			merged := mergeSegments(segs)
			section := encodeDataSection(merged)
			out = make([]byte, 0, len(bin))
			out = append(out, bin[:start]...)
			out = append(out, section...)
			out = append(out, bin[end:]...)
			return out, true, nil
		}
		pos = end
	}
	return bin, false, nil
}

func parseActiveSegments(b []byte) ([]dataSegment, bool, error) {
	count, n, err := readU32(b, 0)
	if err != nil {
		return nil, false, err
	}
	pos := n
	segs := make([]dataSegment, 0, count)
	for i := uint32(0); i < count; i++ {
		flags, n, err := readU32(b, pos)
		if err != nil {
			return nil, false, err
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
			return nil, false, err
		}
		pos += 1 + n
		if pos >= len(b) || b[pos] != 0x0b {
			return nil, false, nil
		}
		pos++
		size, n, err := readU32(b, pos)
		if err != nil {
			return nil, false, err
		}
		pos += n
		if pos+int(size) > len(b) {
			return nil, false, errors.New("data segment runs past its section")
		}
		segs = append(segs, dataSegment{offset: uint32(off), bytes: b[pos : pos+int(size)]})
		pos += int(size)
	}
	return segs, true, nil
}

func mergeSegments(segs []dataSegment) []dataSegment {
	sort.SliceStable(segs, func(i, j int) bool { return segs[i].offset < segs[j].offset })
	var out []dataSegment
	for _, s := range segs {
		if len(out) > 0 {
			last := &out[len(out)-1]
			lastEnd := uint64(last.offset) + uint64(len(last.bytes))
			if uint64(s.offset) >= lastEnd && uint64(s.offset)-lastEnd <= mergeGap {
				// append grows geometrically, so merging stays linear.
				last.bytes = append(last.bytes, make([]byte, uint64(s.offset)-lastEnd)...)
				last.bytes = append(last.bytes, s.bytes...)
				continue
			}
		}
		out = append(out, dataSegment{offset: s.offset, bytes: append([]byte(nil), s.bytes...)})
	}
	return out
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
