package wasmasm

// socketErrorCodes are wasi:sockets/network's error-code labels, in order.
var socketErrorCodes = []string{
	"unknown", "access-denied", "not-supported", "invalid-argument", "out-of-memory", "timeout",
	"concurrency-conflict", "not-in-progress", "would-block", "invalid-state", "new-socket-limit",
	"address-not-bindable", "address-in-use", "remote-unreachable", "connection-refused",
	"connection-reset", "connection-aborted", "datagram-too-large", "name-unresolvable",
	"temporary-resolver-failure", "permanent-resolver-failure",
}

// pollInterface imports wasi:io/poll with pollable.block.
func pollInterface(c *Component) (pollable, block uint32) {
	var t InstanceType
	p := t.Resource("pollable")
	b := t.Type(Borrow(p))
	t.Func("[method]pollable.block", t.Type(Func(nil, Field{"self", TypeRef(b)})))
	inst := c.ImportInstance("wasi:io/poll@0.2.0", &t)
	return c.AliasType(inst, "pollable"), c.AliasFunc(inst, "[method]pollable.block")
}

// TCPEcho is a command component that serves TCP echo over wasi:sockets
// 0.2.0, one connection at a time, for ever: it binds 0.0.0.0:port, listens,
// and for each connection it accepts writes back what it reads until the
// peer closes. It returns err (exit code 1) when a step of setting up the
// listener fails (create, bind, listen).
func TCPEcho(port uint16) []byte {
	var c Component
	tPollable, fBlock := pollInterface(&c)

	var st InstanceType
	sErr := st.Resource("error")
	sIn := st.Resource("input-stream")
	sOut := st.Resource("output-stream")
	streamErr := st.Type(Variant(Case{"last-operation-failed", TypeRef(st.Type(Own(sErr)))}, Case{"closed", nil}))
	bytes := st.Type(List(U8))
	readRes := st.Type(Result(TypeRef(bytes), TypeRef(streamErr)))
	st.Func("[method]input-stream.blocking-read", st.Type(Func(TypeRef(readRes), Field{"self", TypeRef(st.Type(Borrow(sIn)))}, Field{"len", U64})))
	writeRes := st.Type(Result(nil, TypeRef(streamErr)))
	st.Func("[method]output-stream.blocking-write-and-flush", st.Type(Func(TypeRef(writeRes), Field{"self", TypeRef(st.Type(Borrow(sOut)))}, Field{"contents", TypeRef(bytes)})))
	iStreams := c.ImportInstance("wasi:io/streams@0.2.0", &st)
	tIn, tOut := c.AliasType(iStreams, "input-stream"), c.AliasType(iStreams, "output-stream")
	fRead := c.AliasFunc(iStreams, "[method]input-stream.blocking-read")
	fWrite := c.AliasFunc(iStreams, "[method]output-stream.blocking-write-and-flush")

	var nw InstanceType
	nw.Resource("network")
	tNet := c.AliasType(c.ImportInstance("wasi:sockets/network@0.2.0", &nw), "network")

	var inw InstanceType
	inw.Func("instance-network", inw.Type(Func(TypeRef(inw.Type(Own(inw.Outer(tNet)))))))
	fInstNet := c.AliasFunc(c.ImportInstance("wasi:sockets/instance-network@0.2.0", &inw), "instance-network")

	var tcp InstanceType
	net, in, out, poll := tcp.Outer(tNet), tcp.Outer(tIn), tcp.Outer(tOut), tcp.Outer(tPollable)
	sock := tcp.Resource("tcp-socket")
	ec := tcp.Type(Enum(socketErrorCodes...))
	v4 := tcp.Type(Tuple(U8, U8, U8, U8))
	v6 := tcp.Type(Tuple(U16, U16, U16, U16, U16, U16, U16, U16))
	sa := tcp.Type(Variant(
		Case{"ipv4", TypeRef(tcp.Type(Record(Field{"port", U16}, Field{"address", TypeRef(v4)})))},
		Case{"ipv6", TypeRef(tcp.Type(Record(Field{"port", U16}, Field{"flow-info", U32T}, Field{"address", TypeRef(v6)}, Field{"scope-id", U32T})))},
	))
	self := Field{"self", TypeRef(tcp.Type(Borrow(sock)))}
	unit := TypeRef(tcp.Type(Result(nil, TypeRef(ec))))
	tcp.Func("[method]tcp-socket.start-bind", tcp.Type(Func(unit, self, Field{"network", TypeRef(tcp.Type(Borrow(net)))}, Field{"local-address", TypeRef(sa)})))
	step := tcp.Type(Func(unit, self))
	for _, f := range []string{"finish-bind", "start-listen", "finish-listen"} {
		tcp.Func("[method]tcp-socket."+f, step)
	}
	accepted := tcp.Type(Tuple(TypeRef(tcp.Type(Own(sock))), TypeRef(tcp.Type(Own(in))), TypeRef(tcp.Type(Own(out)))))
	tcp.Func("[method]tcp-socket.accept", tcp.Type(Func(TypeRef(tcp.Type(Result(TypeRef(accepted), TypeRef(ec)))), self)))
	tcp.Func("[method]tcp-socket.subscribe", tcp.Type(Func(TypeRef(tcp.Type(Own(poll))), self)))
	iTCP := c.ImportInstance("wasi:sockets/tcp@0.2.0", &tcp)
	tSock := c.AliasType(iTCP, "tcp-socket")
	fns := map[string]uint32{}
	for _, f := range []string{"start-bind", "finish-bind", "start-listen", "finish-listen", "accept", "subscribe"} {
		fns[f] = c.AliasFunc(iTCP, "[method]tcp-socket."+f)
	}

	var cr InstanceType
	s := cr.Outer(tSock)
	crEC := cr.Type(Enum(socketErrorCodes...))
	family := cr.Type(Enum("ipv4", "ipv6"))
	created := cr.Type(Result(TypeRef(cr.Type(Own(s))), TypeRef(crEC)))
	cr.Func("create-tcp-socket", cr.Type(Func(TypeRef(created), Field{"address-family", TypeRef(family)})))
	fCreate := c.AliasFunc(c.ImportInstance("wasi:sockets/tcp-create-socket@0.2.0", &cr), "create-tcp-socket")

	i32 := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = 0x7f
		}
		return b
	}
	// The main module's imports, in order.
	const (
		cInstNet = iota
		cCreate
		cBind
		cFinishBind
		cListen
		cFinishListen
		cSubscribe
		cBlock
		cDropPollable
		cAccept
		cRead
		cWrite
		cDropIn
		cDropOut
		cDropSock
	)
	imports := []Import{
		{Func: fInstNet, Core: CoreFunc{nil, i32(1)}},
		{Func: fCreate, Core: CoreFunc{i32(2), nil}},
		{Func: fns["start-bind"], Core: CoreFunc{i32(15), nil}},
		{Func: fns["finish-bind"], Core: CoreFunc{i32(2), nil}},
		{Func: fns["start-listen"], Core: CoreFunc{i32(2), nil}},
		{Func: fns["finish-listen"], Core: CoreFunc{i32(2), nil}},
		{Func: fns["subscribe"], Core: CoreFunc{i32(1), i32(1)}},
		{Func: fBlock, Core: CoreFunc{i32(1), nil}},
		{Drop: true, Type: tPollable, Core: CoreFunc{i32(1), nil}},
		{Func: fns["accept"], Core: CoreFunc{i32(2), nil}},
		{Func: fRead, Core: CoreFunc{[]byte{0x7f, 0x7e, 0x7f}, nil}},
		{Func: fWrite, Core: CoreFunc{i32(4), nil}},
		{Drop: true, Type: tIn, Core: CoreFunc{i32(1), nil}},
		{Drop: true, Type: tOut, Core: CoreFunc{i32(1), nil}},
		{Drop: true, Type: tSock, Core: CoreFunc{i32(1), nil}},
	}
	// Locals: 0 network, 1 listener, 2 pollable, 3 client, 4 input, 5 output.
	check := func(int32) []byte { return Cat(Load8(RetAddr), ReturnIf(1)) }
	step1 := func(f byte, code int32) []byte {
		return Cat(LocalGet(1), I32(RetAddr), Call(f), check(code))
	}
	bindArgs := Cat(LocalGet(1), LocalGet(0), I32(0), I32(int32(port))) // self, network, ipv4, port
	for i := 0; i < 4+6; i++ {
		bindArgs = append(bindArgs, I32(0)...) // 0.0.0.0, then the ipv6 case's unused slots
	}
	code := Cat(
		Call(cInstNet), LocalSet(0),
		I32(0), I32(RetAddr), Call(cCreate), check(1),
		LoadAt(RetAddr+4), LocalSet(1),
		bindArgs, I32(RetAddr), Call(cBind), check(2),
		step1(cFinishBind, 3), step1(cListen, 4), step1(cFinishListen, 5),
		Loop(
			LocalGet(1), Call(cSubscribe), LocalSet(2),
			LocalGet(2), Call(cBlock),
			LocalGet(2), Call(cDropPollable),
			LocalGet(1), I32(RetAddr), Call(cAccept),
			Load8(RetAddr), BrIfLoop(0), // would-block: wait again
			LoadAt(RetAddr+4), LocalSet(3), LoadAt(RetAddr+8), LocalSet(4), LoadAt(RetAddr+12), LocalSet(5),
			Loop(
				LocalGet(4), I64(32<<10), I32(RetAddr), Call(cRead),
				Load8(RetAddr), BrIfOut(0), // closed or failed
				LocalGet(5), LoadAt(RetAddr+4), LoadAt(RetAddr+8), I32(RetAddr), Call(cWrite),
				Load8(RetAddr), BrIfOut(0),
			),
			LocalGet(4), Call(cDropIn), LocalGet(5), Call(cDropOut), LocalGet(3), Call(cDropSock),
		),
		I32(0),
	)
	return c.Bytes(Command{Imports: imports, Locals: 6, Code: code, Pages: 2})
}

// StreamChild is a command component that takes stdin, subscribes to it
// and drops the stream and its pollable, in the order WASI allows (the
// pollable first) or, with parentFirst, the stream while its pollable
// lives, which must trap.
func StreamChild(parentFirst bool) []byte {
	var c Component
	var poll InstanceType
	poll.Resource("pollable")
	tPollable := c.AliasType(c.ImportInstance("wasi:io/poll@0.2.0", &poll), "pollable")

	var st InstanceType
	in := st.Resource("input-stream")
	p := st.Outer(tPollable)
	st.Func("[method]input-stream.subscribe", st.Type(Func(TypeRef(st.Type(Own(p))), Field{"self", TypeRef(st.Type(Borrow(in)))})))
	iStreams := c.ImportInstance("wasi:io/streams@0.2.0", &st)
	tIn := c.AliasType(iStreams, "input-stream")
	fSubscribe := c.AliasFunc(iStreams, "[method]input-stream.subscribe")

	var stdin InstanceType
	stdin.Func("get-stdin", stdin.Type(Func(TypeRef(stdin.Type(Own(stdin.Outer(tIn)))))))
	fStdin := c.AliasFunc(c.ImportInstance("wasi:cli/stdin@0.2.0", &stdin), "get-stdin")

	imports := []Import{
		{Func: fStdin, Core: CoreFunc{nil, []byte{0x7f}}},
		{Func: fSubscribe, Core: CoreFunc{[]byte{0x7f}, []byte{0x7f}}},
		{Drop: true, Type: tIn, Core: CoreFunc{[]byte{0x7f}, nil}},
		{Drop: true, Type: tPollable, Core: CoreFunc{[]byte{0x7f}, nil}},
	}
	// Locals: 0 stream, 1 pollable.
	drops := Cat(LocalGet(1), Call(3), LocalGet(0), Call(2))
	if parentFirst {
		drops = Cat(LocalGet(0), Call(2), LocalGet(1), Call(3))
	}
	code := Cat(Call(0), LocalSet(0), LocalGet(0), Call(1), LocalSet(1), drops, I32(0))
	return c.Bytes(Command{Imports: imports, Locals: 2, Code: code, Pages: 2})
}

// HTTPWithUnusedSockets is the well-behaved HTTP guest (it answers 200)
// that also imports every wasi:sockets 0.2.0 interface and never calls
// them, as the .NET and JavaScript toolchains build components.
func HTTPWithUnusedSockets() []byte {
	b := Guest{Flood: Answer, Pages: 2}.Bytes()
	// Imports after the export: a component's sections may come in any
	// order, and these continue the guest's index spaces: 8 types (the
	// streams and http instance types, three aliased resources, the
	// handler's three), 4 instances (the export is one) and 8 functions.
	c := Component{types: 8, instances: 4, funcs: 8}
	var nw InstanceType
	nw.Resource("network")
	nw.Type(Enum(socketErrorCodes...))
	tNet := c.AliasType(c.ImportInstance("wasi:sockets/network@0.2.0", &nw), "network")
	var inw InstanceType
	inw.Func("instance-network", inw.Type(Func(TypeRef(inw.Type(Own(inw.Outer(tNet)))))))
	c.ImportInstance("wasi:sockets/instance-network@0.2.0", &inw)
	for _, iface := range []struct{ name, resource, create string }{
		{"tcp", "tcp-socket", "create-tcp-socket"},
		{"udp", "udp-socket", "create-udp-socket"},
	} {
		var t InstanceType
		t.Outer(tNet)
		sock := t.Resource(iface.resource)
		t.Func("[method]"+iface.resource+".address-family", t.Type(Func(TypeRef(t.Type(Enum("ipv4", "ipv6"))), Field{"self", TypeRef(t.Type(Borrow(sock)))})))
		tSock := c.AliasType(c.ImportInstance("wasi:sockets/"+iface.name+"@0.2.0", &t), iface.resource)
		var cr InstanceType
		s := cr.Outer(tSock)
		created := cr.Type(Result(TypeRef(cr.Type(Own(s))), TypeRef(cr.Type(Enum(socketErrorCodes...)))))
		cr.Func(iface.create, cr.Type(Func(TypeRef(created), Field{"address-family", TypeRef(cr.Type(Enum("ipv4", "ipv6")))})))
		c.ImportInstance("wasi:sockets/"+iface.name+"-create-socket@0.2.0", &cr)
	}
	var lookup InstanceType
	n := lookup.Outer(tNet)
	rs := lookup.Resource("resolve-address-stream")
	res := lookup.Type(Result(TypeRef(lookup.Type(Own(rs))), TypeRef(lookup.Type(Enum(socketErrorCodes...)))))
	lookup.Func("resolve-addresses", lookup.Type(Func(TypeRef(res), Field{"network", TypeRef(lookup.Type(Borrow(n)))}, Field{"name", String})))
	c.ImportInstance("wasi:sockets/ip-name-lookup@0.2.0", &lookup)
	for _, s := range c.sections {
		b = append(b, s...)
	}
	return b
}

// Nested is a composed command component, as wac writes them: it carries a
// component of its own (exporting double(x: u32) -> u32, lifted from its
// core module), instantiates it, and lowers that export into its main
// module, whose run returns ok when double(21) is 42.
func Nested() []byte {
	inner := Cat(Preamble,
		Section(1, Cat(CoreHeader,
			Section(1, Vec(1, []byte{0x60, 1, 0x7f, 1, 0x7f})...),
			Section(3, Vec(1, []byte{0})...),
			Section(7, Vec(1, Cat(Str("double"), []byte{0x00, 0}))...),
			Section(10, Vec(1, FuncBody([]byte{0}, Cat(LocalGet(0), I32(2), []byte{0x6c}, End)))...),
		)...),
		Section(2, 1, 0x00, 0, 0), // core instance 0
		Section(6, Cat([]byte{1, 0x00, 0x00, 0x01, 0}, Str("double"))...), // core func 0
		Section(7, Cat([]byte{1}, Func(U32T, Field{"x", U32T}))...),       // type 0
		Section(8, 1, 0x00, 0x00, 0, 0, 0),                                // func 0: lift core func 0
		Section(11, Cat([]byte{1, 0x00}, Str("double"), []byte{0x01, 0, 0x00})...),
	)
	var c Component
	c.Raw(
		Section(4, inner...),      // component 0
		Section(5, 1, 0x00, 0, 0), // instance 0: component 0, no arguments
	)
	c.instances++
	fDouble := c.AliasFunc(0, "double")
	imports := []Import{{Func: fDouble, Core: CoreFunc{[]byte{0x7f}, []byte{0x7f}}}}
	code := Cat(I32(21), Call(0), I32(42), I32Ne)
	return c.Bytes(Command{Imports: imports, Code: code, Pages: 2})
}
