package wasmasm

// Flood is what a hostile guest does over and over.
type Flood int

const (
	// Answer sets a 200 response with no body and returns: a well-behaved
	// guest, for the request that must still work.
	Answer Flood = iota
	// Fields makes one fields and appends a ValueLen-byte value to it
	// Count times.
	Fields
	// Handles makes Count fields and keeps every handle.
	Handles
	// Bodies makes Count responses, each with a body it writes Writes times
	// ValueLen bytes into before the response is set: bytes the host must
	// buffer.
	Bodies
)

// Guest describes a hand-assembled component that imports wasi:io/streams
// and wasi:http/types (0.2.0) and exports either wasi:http/incoming-handler
// or wasi:cli/run.
type Guest struct {
	Flood Flood
	// Command exports wasi:cli/run instead of the incoming handler; run
	// returns ok when the flood ends.
	Command bool
	// Count is how many times the flood's step runs; Writes is how many
	// writes each body gets (Bodies).
	Count, Writes int32
	// ValueLen is the length of a header value or a body write; the guest
	// fills that much of its memory with 'a' and passes it.
	ValueLen int32
	// Pages is the guest's linear memory, in 64 KiB pages; it must hold
	// 64 KiB plus ValueLen.
	Pages uint32
}

// Addresses in the guest's memory.
const (
	retArea  = 16    // results the host stores through a pointer
	nameAddr = 64    // the header name
	heapAddr = 1024  // where realloc starts handing out memory
	valAddr  = 65536 // the value or body bytes
)

const headerName = "x-flood"

// Bytes assembles the component.
func (g Guest) Bytes() []byte {
	memMod := Cat(CoreHeader,
		Section(1, Vec(1, []byte{0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f})...),
		Section(3, Vec(1, []byte{0})...),
		Section(5, Cat(Vec(1, []byte{0x00}), U32(nil, g.Pages))...),
		Section(6, Vec(1, Cat([]byte{0x7f, 0x01}, I32(heapAddr), End))...),
		Section(7, Vec(2, Cat(Str("memory"), []byte{0x02, 0}), Cat(Str("realloc"), []byte{0x00, 0}))...),
		// realloc(_, _, align, size): a bump allocator that never frees.
		Section(10, Vec(1, FuncBody([]byte{0}, []byte{
			0x23, 0, 0x20, 2, 0x6a, 0x41, 1, 0x6b, 0x41, 0, 0x20, 2, 0x6b, 0x71,
			0x22, 0, 0x20, 3, 0x6a, 0x24, 0, 0x20, 0, 0x0b}))...),
		Section(11, Vec(1, Cat([]byte{0}, I32(nameAddr), End, Str(headerName)))...),
	)

	// Core imports of the main module, in order: the lowered functions.
	const (
		fNewFields = iota
		fAppend
		fNewResponse
		fBody
		fWrite
		fStreamWrite
		fSet
		nImports
	)
	// Locals after the parameters: i, j, fields, response, body, stream.
	params := byte(2)
	if g.Command {
		params = 0
	}
	li, lj, lf, lr, lb, ls := params, params+1, params+2, params+3, params+4, params+5
	step := func() []byte {
		switch g.Flood {
		case Fields:
			return Cat(LocalGet(lf), I32(nameAddr), I32(int32(len(headerName))), I32(valAddr), I32(g.ValueLen), I32(retArea), Call(fAppend))
		case Handles:
			return Cat(Call(fNewFields), Drop)
		case Bodies:
			return Cat(
				Call(fNewFields), Call(fNewResponse), LocalSet(lr),
				LocalGet(lr), I32(retArea), Call(fBody), I32(retArea), Load(4), LocalSet(lb),
				LocalGet(lb), I32(retArea), Call(fWrite), I32(retArea), Load(4), LocalSet(ls),
				Repeat(lj, g.Writes, Cat(LocalGet(ls), I32(valAddr), I32(g.ValueLen), I32(retArea), Call(fStreamWrite))),
			)
		}
		return nil
	}
	code := Cat(
		I32(valAddr), I32('a'), I32(g.ValueLen), MemFill,
		Call(fNewFields), LocalSet(lf),
	)
	if g.Flood == Answer {
		if !g.Command {
			code = Cat(code, LocalGet(lf), Call(fNewResponse), LocalSet(lr),
				LocalGet(1), I32(0), LocalGet(lr), Call(fSet))
		}
	} else {
		code = Cat(code, Repeat(li, g.Count, step()))
	}
	if g.Command {
		code = Cat(code, I32(0))
	}
	code = Cat(code, End)

	i32s := func(n int, results int) []byte {
		b := []byte{0x60, byte(n)}
		for i := 0; i < n; i++ {
			b = append(b, 0x7f)
		}
		b = append(b, byte(results))
		for i := 0; i < results; i++ {
			b = append(b, 0x7f)
		}
		return b
	}
	// Core types: 0 ()->i32, 1 (i32)->i32, 2 (i32 i32)->(), 3 (i32 i32 i32)->(),
	// 4 (i32 i32 i32 i32)->(), 5 (6 x i32)->(), 6 the export.
	export := i32s(2, 0)
	if g.Command {
		export = i32s(0, 1)
	}
	imp := func(name string, typ byte) []byte { return Cat(Str("h"), Str(name), []byte{0x00, typ}) }
	mainMod := Cat(CoreHeader,
		Section(1, Vec(7, i32s(0, 1), i32s(1, 1), i32s(2, 0), i32s(3, 0), i32s(4, 0), i32s(6, 0), export)...),
		Section(2, Vec(nImports+1,
			imp("new-fields", 0), imp("append", 5), imp("new-response", 1), imp("body", 2),
			imp("write", 2), imp("stream-write", 4), imp("set", 3),
			Cat(Str("env"), Str("memory"), []byte{0x02, 0x00, 1}))...),
		Section(3, Vec(1, []byte{6})...),
		Section(7, Vec(1, Cat(Str("run"), []byte{0x00, nImports}))...),
		Section(10, Vec(1, FuncBody([]byte{1, 6, 0x7f}, code))...),
	)

	exp := func(name string, desc ...byte) []byte { return Cat([]byte{0x04, 0x00}, Str(name), desc) }
	typ := func(t ...byte) []byte { return append([]byte{0x01}, t...) }
	field := func(name string, t byte) []byte { return append(Str(name), t) }
	plainCase := func(l string) []byte { return Cat(Str(l), []byte{0x00, 0x00}) }

	streams := Cat([]byte{0x42}, Vec(9,
		exp("error", 0x03, 0x01),         // t0
		exp("output-stream", 0x03, 0x01), // t1
		typ(0x69, 0),                     // t2 own<error>
		typ(Cat([]byte{0x71}, Vec(2, Cat(Str("last-operation-failed"), []byte{0x01, 2, 0x00}), plainCase("closed")))...), // t3 stream-error
		typ(0x68, 1),             // t4 borrow<output-stream>
		typ(0x70, 0x7d),          // t5 list<u8>
		typ(0x6a, 0x00, 0x01, 3), // t6 result<_, stream-error>
		typ(Cat([]byte{0x40}, Vec(2, field("self", 4), field("contents", 5)), []byte{0x00, 6})...), // t7
		exp("[method]output-stream.blocking-write-and-flush", 0x01, 7),
	))
	httpDecls := [][]byte{
		{0x02, 0x03, 0x02, 1, 1},  // t0 alias outer: the component's type 1, output-stream
		exp("fields", 0x03, 0x01), // t1
		exp("outgoing-response", 0x03, 0x01),
		exp("outgoing-body", 0x03, 0x01),
		exp("incoming-request", 0x03, 0x01),
		exp("response-outparam", 0x03, 0x01), // t5
		typ(0x69, 1),                         // t6 own<fields>
		typ(0x40, 0, 0x00, 6),                // t7 func() -> own<fields>
		exp("[constructor]fields", 0x01, 7),
		typ(0x68, 1), // t8 borrow<fields>
		typ(Cat([]byte{0x71}, Vec(3, plainCase("invalid-syntax"), plainCase("forbidden"), plainCase("immutable")))...), // t9 header-error
		typ(0x6a, 0x00, 0x01, 9), // t10 result<_, header-error>
		typ(0x70, 0x7d),          // t11 list<u8>
		typ(Cat([]byte{0x40}, Vec(3, field("self", 8), field("name", 0x73), field("value", 11)), []byte{0x00, 10})...), // t12
		exp("[method]fields.append", 0x01, 12),
		typ(0x69, 2), // t13 own<outgoing-response>
		typ(Cat([]byte{0x40}, Vec(1, field("headers", 6)), []byte{0x00, 13})...), // t14
		exp("[constructor]outgoing-response", 0x01, 14),
		typ(0x68, 2),              // t15 borrow<outgoing-response>
		typ(0x69, 3),              // t16 own<outgoing-body>
		typ(0x6a, 0x01, 16, 0x00), // t17 result<own<outgoing-body>>
		typ(Cat([]byte{0x40}, Vec(1, field("self", 15)), []byte{0x00, 17})...), // t18
		exp("[method]outgoing-response.body", 0x01, 18),
		typ(0x68, 3),              // t19 borrow<outgoing-body>
		typ(0x69, 0),              // t20 own<output-stream>
		typ(0x6a, 0x01, 20, 0x00), // t21 result<own<output-stream>>
		typ(Cat([]byte{0x40}, Vec(1, field("self", 19)), []byte{0x00, 21})...), // t22
		exp("[method]outgoing-body.write", 0x01, 22),
		typ(0x69, 5),              // t23 own<response-outparam>
		typ(0x6a, 0x01, 13, 0x00), // t24 result<own<outgoing-response>> (the guest never sends an error)
		typ(Cat([]byte{0x40}, Vec(2, field("param", 23), field("response", 24)), []byte{0x01, 0x00})...), // t25
		exp("[static]response-outparam.set", 0x01, 25),
	}
	http := Cat([]byte{0x42}, Vec(len(httpDecls), httpDecls...))

	lower := func(f byte) []byte { return []byte{0x01, 0x00, f, 3, 0x03, 0, 0x04, 0, 0x00} }
	alias := func(inst byte, name string) []byte { return Cat([]byte{0x01, 0x00, inst}, Str(name)) }
	coreExport := func(name string, f byte) []byte { return Cat(Str(name), []byte{0x00, f}) }
	var exportTypes, lift, exportName []byte
	if g.Command {
		// type 5 result, type 6 func() -> result; func 7 lifts core func 8.
		exportTypes = []byte{2, 0x6a, 0x00, 0x00, 0x40, 0, 0x00, 5}
		lift = []byte{1, 0x00, 0x00, 8, 0, 6}
		exportName = Str("wasi:cli/run@0.2.0")
	} else {
		// type 5 own<incoming-request>, 6 own<response-outparam>, 7 the handler's type.
		exportTypes = Cat([]byte{3, 0x69, 3, 0x69, 4}, []byte{0x40}, Vec(2, field("request", 5), field("response-out", 6)), []byte{0x01, 0x00})
		lift = []byte{1, 0x00, 0x00, 8, 0, 7}
		exportName = Str("wasi:http/incoming-handler@0.2.0")
	}
	exportedFunc := "run"
	if !g.Command {
		exportedFunc = "handle"
	}
	return Cat(Preamble,
		Section(7, Cat([]byte{1}, streams)...),                                              // type 0
		Section(10, Cat([]byte{1, 0x00}, Str("wasi:io/streams@0.2.0"), []byte{0x05, 0})...), // instance 0
		Section(6, Cat([]byte{1, 0x03, 0x00, 0}, Str("output-stream"))...),                  // type 1
		Section(7, Cat([]byte{1}, http)...),                                                 // type 2
		Section(10, Cat([]byte{1, 0x00}, Str("wasi:http/types@0.2.0"), []byte{0x05, 2})...), // instance 1
		Section(6, Cat([]byte{2},
			[]byte{0x03, 0x00, 1}, Str("incoming-request"), // type 3
			[]byte{0x03, 0x00, 1}, Str("response-outparam"))...), // type 4
		Section(6, Cat([]byte{7}, // funcs 0-6
			alias(1, "[constructor]fields"),
			alias(1, "[method]fields.append"),
			alias(1, "[constructor]outgoing-response"),
			alias(1, "[method]outgoing-response.body"),
			alias(1, "[method]outgoing-body.write"),
			alias(0, "[method]output-stream.blocking-write-and-flush"),
			alias(1, "[static]response-outparam.set"))...),
		Section(1, memMod...),     // core module 0
		Section(1, mainMod...),    // core module 1
		Section(2, 1, 0x00, 0, 0), // core instance 0: memory and realloc
		Section(6, Cat([]byte{2},
			[]byte{0x00, 0x02, 0x01, 0}, Str("memory"), // core memory 0
			[]byte{0x00, 0x00, 0x01, 0}, Str("realloc"))...), // core func 0
		Section(8, Cat([]byte{7}, lower(0), lower(1), lower(2), lower(3), lower(4), lower(5), lower(6))...), // core funcs 1-7
		Section(2, Cat([]byte{2},
			[]byte{0x01}, Vec(7, coreExport("new-fields", 1), coreExport("append", 2), coreExport("new-response", 3),
				coreExport("body", 4), coreExport("write", 5), coreExport("stream-write", 6), coreExport("set", 7)),
			[]byte{0x01}, Vec(1, Cat(Str("memory"), []byte{0x02, 0})))...), // core instances 1, 2
		Section(2, Cat([]byte{1, 0x00, 1}, Vec(2, Cat(Str("h"), []byte{0x12, 1}), Cat(Str("env"), []byte{0x12, 2})))...), // core instance 3
		Section(6, Cat([]byte{1, 0x00, 0x00, 0x01, 3}, Str("run"))...),                                                   // core func 8
		Section(7, exportTypes...),
		Section(8, lift...), // func 7
		Section(5, Cat([]byte{1, 0x01}, Vec(1, Cat([]byte{0x00}, Str(exportedFunc), []byte{0x01, 7})))...), // instance 2
		Section(11, Cat([]byte{1, 0x00}, exportName, []byte{0x05, 2, 0x00})...),
	)
}
