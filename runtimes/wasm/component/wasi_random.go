package component

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
)

// randomHost is the wasi:random part of hostFuncs.
var randomHost = map[string]map[string]hostDef{
	"wasi:random/random": {
		"get-random-bytes": {"func(len: u64) -> list<u8>", func(c *cx, a []any) []any {
			b := make([]byte, randomLen(c, a[0].(uint64)))
			_, _ = crand.Read(b)
			return []any{b}
		}},
		"get-random-u64": {"func() -> u64", func(c *cx, a []any) []any {
			var b [8]byte
			_, _ = crand.Read(b[:])
			return []any{binary.LittleEndian.Uint64(b[:])}
		}},
	},
	"wasi:random/insecure": {
		"get-insecure-random-bytes": {"func(len: u64) -> list<u8>", func(c *cx, a []any) []any {
			b := make([]byte, randomLen(c, a[0].(uint64)))
			for i := range b {
				b[i] = byte(rand.Uint32())
			}
			return []any{b}
		}},
		"get-insecure-random-u64": {"func() -> u64", func(c *cx, a []any) []any { return []any{rand.Uint64()} }},
	},
	"wasi:random/insecure-seed": {
		"insecure-seed": {"func() -> tuple<u64,u64>", func(c *cx, a []any) []any {
			s := c.inst.wasi.seed
			return []any{[]any{s[0], s[1]}}
		}},
	},
}

// maxRandom bounds one request for random bytes.
const maxRandom = 1 << 20

func randomLen(c *cx, n uint64) int {
	if n > maxRandom {
		trapf("asked for %d random bytes at once (at most %d)", n, maxRandom)
	}
	c.hold(int64(n))
	return int(n)
}
