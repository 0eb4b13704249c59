package component

import (
	"context"
	"math"
	"reflect"
	"testing"

	"github.com/tetratelabs/wazero"

	bin "github.com/fungi-go/fungi/runtimes/wasm/component/internal/binary"
)

// abiCx is a lift/lower context over a real wazero memory and a real guest
// allocator (the bump allocator of the hand-made guest's memory module).
func abiCx(t *testing.T, enc byte) *cx {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	t.Cleanup(func() { _ = rt.Close(ctx) })
	// The memory module is the first core module section of escapeGuest.
	var memMod []byte
	dc, err := bin.Decode(escapeGuest())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dc.Defs {
		if m, ok := d.(*bin.CoreModuleDef); ok {
			memMod = m.Bytes
			break
		}
	}
	m, err := rt.Instantiate(ctx, memMod)
	if err != nil {
		t.Fatal(err)
	}
	inst := &instance{tables: make([]handleTable, 1)}
	return &cx{ctx: ctx, inst: inst, table: &inst.tables[0], mem: m.ExportedMemory("memory"), realloc: m.ExportedFunction("realloc"), encoding: enc}
}

func prim(k kind) *vtype { return &vtype{kind: k} }

func TestCanonicalLayouts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		t           *vtype
		size, align uint32
		flat        []coreType
	}{
		{"record{u8,u32}", &vtype{kind: kRecord, fields: []*vtype{prim(kU8), prim(kU32)}}, 8, 4, []coreType{ci32, ci32}},
		{"tuple{u8,u16,u8}", &vtype{kind: kTuple, fields: []*vtype{prim(kU8), prim(kU16), prim(kU8)}}, 6, 2, []coreType{ci32, ci32, ci32}},
		{"string", prim(kString), 8, 4, []coreType{ci32, ci32}},
		{"option<u64>", &vtype{kind: kOption, elem: prim(kU64), cases: []*vtype{nil, prim(kU64)}}, 16, 8, []coreType{ci32, ci64}},
		{"result<f32,u64>", &vtype{kind: kResult, cases: []*vtype{prim(kF32), prim(kU64)}}, 16, 8, []coreType{ci32, ci64}},
		{"variant{f32,u32}", &vtype{kind: kVariant, cases: []*vtype{prim(kF32), prim(kU32)}}, 8, 4, []coreType{ci32, ci32}},
		{"variant{f64,f32}", &vtype{kind: kVariant, cases: []*vtype{prim(kF64), prim(kF32)}}, 16, 8, []coreType{ci32, ci64}},
		{"enum 300", &vtype{kind: kEnum, labels: make([]string, 300)}, 2, 2, []coreType{ci32}},
		{"flags 9", &vtype{kind: kFlags, labels: make([]string, 9)}, 2, 2, []coreType{ci32}},
		{"flags 0", &vtype{kind: kFlags}, 0, 1, nil},
		{"char", prim(kChar), 4, 4, []coreType{ci32}},
	} {
		tc.t.layout()
		if tc.t.size != tc.size || tc.t.align != tc.align || !reflect.DeepEqual(tc.t.flat, tc.flat) {
			t.Errorf("%s: size %d align %d flat %v; want %d %d %v", tc.name, tc.t.size, tc.t.align, tc.t.flat, tc.size, tc.align, tc.flat)
		}
	}
}

func TestCanonicalRoundTrips(t *testing.T) {
	point := &vtype{kind: kRecord, labels: []string{"x", "y", "tag"}, fields: []*vtype{prim(kF64), prim(kS16), prim(kChar)}}
	shape := &vtype{kind: kVariant, labels: []string{"none", "circle", "name", "big"}, cases: []*vtype{nil, prim(kF32), prim(kString), prim(kU64)}}
	many := &vtype{kind: kTuple}
	var manyV []any
	for i := 0; i < 20; i++ { // past MAX_FLAT_PARAMS
		many.fields = append(many.fields, prim(kS32))
		manyV = append(manyV, int32(-i))
	}
	cases := []struct {
		name string
		t    *vtype
		v    any
	}{
		{"bool", prim(kBool), true},
		{"s8", prim(kS8), int8(-7)},
		{"u16", prim(kU16), uint16(65000)},
		{"s64", prim(kS64), int64(math.MinInt64)},
		{"f32", prim(kF32), float32(1.5)},
		{"f64", prim(kF64), math.Pi},
		{"char", prim(kChar), '🚩'},
		{"string", prim(kString), "with 🚩 emoji"},
		{"list<u8>", &vtype{kind: kList, elem: prim(kU8)}, []byte{1, 2, 3}},
		{"list<string>", &vtype{kind: kList, elem: prim(kString)}, []any{"a", "", "ccc"}},
		{"record", point, []any{2.5, int16(-3), 'x'}},
		{"list<record>", &vtype{kind: kList, elem: point}, []any{[]any{1.0, int16(1), 'a'}, []any{2.0, int16(2), 'b'}}},
		{"variant f32", shape, Variant{Case: 1, Val: float32(-0.25)}},
		{"variant string", shape, Variant{Case: 2, Val: "named"}},
		{"variant u64", shape, Variant{Case: 3, Val: uint64(1 << 40)}},
		{"variant none", shape, Variant{Case: 0}},
		{"option some", &vtype{kind: kOption, elem: prim(kU32), cases: []*vtype{nil, prim(kU32)}}, Variant{Case: 1, Val: uint32(9)}},
		{"result err", &vtype{kind: kResult, cases: []*vtype{nil, prim(kString)}}, Variant{Case: 1, Val: "bad"}},
		{"enum", &vtype{kind: kEnum, labels: []string{"a", "b", "c"}}, uint32(2)},
		{"flags", &vtype{kind: kFlags, labels: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}}, uint32(0x101)},
		{"20 params", many, manyV},
	}
	for _, enc := range []byte{bin.OptUTF8, bin.OptUTF16, bin.OptLatin1} {
		c := abiCx(t, enc)
		for _, tc := range cases {
			tc.t.layout()
			p := c.alloc(max(tc.t.align, 1), max(tc.t.size, 1))
			c.store(tc.t, tc.v, p)
			if got := c.load(tc.t, p); !reflect.DeepEqual(got, tc.v) {
				t.Errorf("encoding %d, %s: store/load gave %#v, want %#v", enc, tc.name, got, tc.v)
			}
			flat := c.lowerFlat(tc.t, tc.v, nil)
			if len(flat) != len(tc.t.flat) {
				t.Errorf("%s: %d flat values, want %d", tc.name, len(flat), len(tc.t.flat))
			}
			if got := c.liftFlat(tc.t, &flatIter{v: flat}); !reflect.DeepEqual(got, tc.v) {
				t.Errorf("encoding %d, %s: lower/lift gave %#v, want %#v", enc, tc.name, got, tc.v)
			}
		}
	}
}

func TestCanonicalLiftTrapsOnBadGuestValues(t *testing.T) {
	c := abiCx(t, bin.OptUTF8)
	enum := &vtype{kind: kEnum, labels: []string{"a"}}
	enum.layout()
	for name, f := range map[string]func(){
		"enum discriminant": func() { c.liftFlat(enum, &flatIter{v: []uint64{5}}) },
		"surrogate char":    func() { c.liftFlat(prim(kChar), &flatIter{v: []uint64{0xd800}}) },
		"string past memory": func() {
			c.liftFlat(prim(kString), &flatIter{v: []uint64{uint64(c.mem.Size() - 2), 10}})
		},
		"huge list": func() {
			c.liftFlat(&vtype{kind: kList, elem: prim(kU64)}, &flatIter{v: []uint64{0, math.MaxUint32}})
		},
		"bad handle": func() {
			c.liftFlat(&vtype{kind: kOwn, res: &resourceType{name: "r"}}, &flatIter{v: []uint64{7}})
		},
		"invalid utf-8": func() {
			copy(c.read(100, 2), []byte{0xff, 0xfe})
			c.liftFlat(prim(kString), &flatIter{v: []uint64{100, 2}})
		},
	} {
		func() {
			defer func() {
				if _, ok := recover().(*trap); !ok {
					t.Errorf("%s: no trap", name)
				}
			}()
			f()
		}()
	}
}
