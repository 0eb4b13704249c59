// Package wasmasm assembles small WebAssembly components byte by byte, for
// tests that must run a guest no toolchain would produce: one that floods
// the host with header fields, handles or buffered body bytes. The hostile
// component drill (cmd/fungi) and the component host's budget tests share
// these guests, so the bytes they exercise are the same.
package wasmasm

// Preamble starts every component binary (version 0x0d, layer 1).
var Preamble = []byte{0, 'a', 's', 'm', 0x0d, 0, 1, 0}

// CoreHeader starts every core module binary.
var CoreHeader = []byte{0, 'a', 's', 'm', 1, 0, 0, 0}

// U32 appends v as unsigned LEB128.
func U32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// Str is a name: its length, then its bytes.
func Str(s string) []byte { return append(U32(nil, uint32(len(s))), s...) }

// Cat joins byte strings.
func Cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Vec is a vector of n items already encoded.
func Vec(n int, items ...[]byte) []byte {
	return Cat(append([][]byte{U32(nil, uint32(n))}, items...)...)
}

// Section is a component or core section: its id, size and body.
func Section(id byte, body ...byte) []byte { return Cat([]byte{id}, U32(nil, uint32(len(body))), body) }

// FuncBody is a core function body: its size, local declarations and code.
func FuncBody(locals, code []byte) []byte {
	b := Cat(locals, code)
	return Cat(U32(nil, uint32(len(b))), b)
}

// I32 is the instruction i32.const v.
func I32(v int32) []byte {
	out := []byte{0x41}
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && b&0x40 == 0) || (v == -1 && b&0x40 != 0) {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

// Core instructions the guests use.
var (
	End     = []byte{0x0b}
	Drop    = []byte{0x1a}
	I32Add  = []byte{0x6a}
	I32GeU  = []byte{0x4f}
	MemFill = []byte{0xfc, 0x0b, 0x00}
)

// LocalGet is local.get i.
func LocalGet(i byte) []byte { return []byte{0x20, i} }

// LocalSet is local.set i.
func LocalSet(i byte) []byte { return []byte{0x21, i} }

// Call is call f.
func Call(f byte) []byte { return []byte{0x10, f} }

// Load is i32.load at the address on the stack plus offset.
func Load(offset byte) []byte { return []byte{0x28, 2, offset} }

// Repeat runs body n times, counting in local i.
func Repeat(i byte, n int32, body ...[]byte) []byte {
	return Cat(
		I32(0), LocalSet(i),
		[]byte{0x02, 0x40, 0x03, 0x40},               // block, loop
		LocalGet(i), I32(n), I32GeU, []byte{0x0d, 1}, // br_if out of the block
		Cat(body...),
		LocalGet(i), I32(1), I32Add, LocalSet(i),
		[]byte{0x0c, 0}, // br to the loop
		End, End,
	)
}
