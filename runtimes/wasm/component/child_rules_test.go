package component

import (
	"context"
	"net"
	"strings"
	"testing"

	bin "github.com/fungi-go/fungi/runtimes/wasm/component/internal/binary"
)

// childTestInstance is an instance with one handle table and the WASI
// state the HTTP and socket functions read, for driving host functions and
// the resource.drop built-in directly.
func childTestInstance(t *testing.T) (*instance, *cx) {
	t.Helper()
	inst := &instance{wake: make(chan struct{}, 1), tables: make([]handleTable, 1)}
	inst.budget.limit = 64 << 20
	inst.tables[0].budget = &inst.budget
	inst.wasi = &wasiState{cfg: &Config{}}
	inst.ctx = context.WithValue(context.Background(), instKey{}, inst)
	return inst, inst.cxFor(inst.ctx, &canonOpts{})
}

// trapOf runs f and returns the message of the trap it raised, "" if none.
func trapOf(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			if tr, ok := r.(*trap); ok {
				msg = tr.msg
				return
			}
			panic(r)
		}
	}()
	f()
	return ""
}

// dropper runs the canonical resource.drop built-in for res on handle h.
func dropBuiltin(inst *instance, res *resourceType) func(h uint32) string {
	f := hostGoFunc(&hostSpec{kind: bin.CanonResourceDrop, res: res})
	return func(h uint32) string { return trapOf(func() { f(inst.ctx, nil, []uint64{uint64(h)}) }) }
}

func own(r *resourceType) *vtype { return &vtype{kind: kOwn, res: r} }

// WASI 0.2: outgoing-request.headers and outgoing-response.headers are
// immutable children of the message; it cannot be dropped, sent or set as
// the response while such a handle lives.
func TestOutgoingMessageHeadersAreImmutableChildren(t *testing.T) {
	inst, c := childTestInstance(t)
	fieldsT, reqT, respT := &resourceType{name: "fields"}, &resourceType{name: "outgoing-request"}, &resourceType{name: "outgoing-response"}
	hc := headerErrorCx(c)
	for _, m := range []struct {
		ctor, headers string
		res           *resourceType
	}{
		{"[constructor]outgoing-request", "[method]outgoing-request.headers", reqT},
		{"[constructor]outgoing-response", "[method]outgoing-response.headers", respT},
	} {
		f := newFields(c)
		if v := httpFuncs["[method]fields.append"].fn(hc, []any{f, "x-before", []byte("1")})[0].(Variant); v.Case != 0 {
			t.Fatalf("%s: the guest's own fields refused an append", m.ctor)
		}
		hf := c.lowerHandle(own(fieldsT), f)
		msgObj := httpFuncs[m.ctor].fn(c, []any{c.liftHandle(own(fieldsT), hf)})[0]
		msg := c.lowerHandle(own(m.res), msgObj)
		h := c.lowerHandle(own(fieldsT), httpFuncs[m.headers].fn(c, []any{msgObj})[0])
		hobj := c.table.get(h, fieldsT).obj
		if v := httpFuncs["[method]fields.set"].fn(hc, []any{hobj, "x-after", []any{[]byte("2")}})[0].(Variant); v.Case != 1 || v.Val.(Variant).Case != 2 {
			t.Fatalf("%s: fields.set on the headers = %#v, want err(immutable)", m.headers, v)
		}
		if got := trapOf(func() { c.liftHandle(own(m.res), msg) }); !strings.Contains(got, "live child") {
			t.Fatalf("%s: sending or setting it while its headers live: trap %q, want one about live children", m.ctor, got)
		}
		drop := dropBuiltin(inst, m.res)
		if got := drop(msg); !strings.Contains(got, "live child") {
			t.Fatalf("%s: dropping it while its headers live: trap %q, want one about live children", m.ctor, got)
		}
		if got := dropBuiltin(inst, fieldsT)(h); got != "" {
			t.Fatalf("dropping the headers trapped: %s", got)
		}
		if got := drop(msg); got != "" {
			t.Fatalf("%s: dropping it after its headers: trap %q", m.ctor, got)
		}
	}
}

// headerErrorCx is c calling a fields method, whose result's error is
// header-error (invalid-syntax, forbidden, immutable).
func headerErrorCx(c *cx) *cx {
	he := &vtype{kind: kVariant, labels: []string{"invalid-syntax", "forbidden", "immutable"}, cases: []*vtype{nil, nil, nil}}
	hc := *c
	hc.ft = &funcType{results: []*vtype{{kind: kResult, cases: []*vtype{nil, he}}}}
	return &hc
}

// The input and output streams of a TCP connection are children of its
// socket (an accepted socket or one that connected): dropping the socket
// while either lives traps; dropping them first, then the socket, does not.
func TestATCPSocketCannotBeDroppedWhileItsStreamsLive(t *testing.T) {
	inst, c := childTestInstance(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if !openSocket(c) {
		t.Fatal("no socket place")
	}
	sockT, inT, outT := &resourceType{name: "tcp-socket"}, &resourceType{name: "input-stream"}, &resourceType{name: "output-stream"}
	s := &tcpSocket{inst: inst, state: tcpConnected}
	tc, in, out := streamsOf(c, server, s)
	s.conn = tc
	hs, hin, hout := c.lowerHandle(own(sockT), s), c.lowerHandle(own(inT), in), c.lowerHandle(own(outT), out)
	dropSock := dropBuiltin(inst, sockT)
	if got := dropSock(hs); !strings.Contains(got, "2 live child") {
		t.Fatalf("dropping the socket with both streams live: trap %q, want one naming 2 live children", got)
	}
	if got := dropBuiltin(inst, inT)(hin); got != "" {
		t.Fatalf("dropping the input stream: %s", got)
	}
	if got := dropSock(hs); !strings.Contains(got, "1 live child") {
		t.Fatalf("dropping the socket with its output stream live: trap %q", got)
	}
	if got := dropBuiltin(inst, outT)(hout); got != "" {
		t.Fatalf("dropping the output stream: %s", got)
	}
	if got := dropSock(hs); got != "" {
		t.Fatalf("dropping the socket after its streams: %s", got)
	}
	if _, err := server.Write([]byte("x")); err == nil {
		t.Fatal("the connection is still open after the socket and both streams were dropped")
	}
}

// A UDP socket's pollable does not keep stream from being called again;
// only the previous pair of datagram streams does.
func TestUDPStreamAgainNeedsOnlyThePreviousStreamsDropped(t *testing.T) {
	s := &udpSocket{}
	p := &pollable{parent: &s.family}
	inst, c := childTestInstance(t)
	pollT, dgT := &resourceType{name: "pollable"}, &resourceType{name: "incoming-datagram-stream"}
	c.lowerHandle(own(pollT), p)
	if s.dgrams.live != 0 || s.liveChildren() != 1 {
		t.Fatalf("a pollable counted as a datagram stream (%d) or not as a child (%d)", s.dgrams.live, s.liveChildren())
	}
	h := c.lowerHandle(own(dgT), &incomingDatagrams{s: s})
	if s.dgrams.live != 1 || s.liveChildren() != 2 {
		t.Fatalf("datagram streams %d, children %d; want 1 and 2", s.dgrams.live, s.liveChildren())
	}
	if got := dropBuiltin(inst, dgT)(h); got != "" || s.dgrams.live != 0 {
		t.Fatalf("dropping the stream: trap %q, %d streams left", got, s.dgrams.live)
	}
}
