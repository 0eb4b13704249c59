package component

import (
	"errors"
	"io"
	"time"
)

// ioHost is the wasi:io part of hostFuncs.
var ioHost = map[string]map[string]hostDef{
	"wasi:io/error": {
		"[method]error.to-debug-string": {"func() -> string", func(c *cx, a []any) []any { return []any{a[0].(*ioError).msg} }},
	},
	"wasi:io/poll": {
		"[method]pollable.ready": {"func() -> bool", func(c *cx, a []any) []any { return []any{a[0].(*pollable).ready()} }},
		"[method]pollable.block": {"func()", func(c *cx, a []any) []any { a[0].(*pollable).block(c); return nil }},
		"poll":                   {"func(in: list<borrow<pollable>>) -> list<u32>", pollMany},
	},
	"wasi:io/streams": streamFuncs,
}

// ioError is a wasi:io/error resource.
type ioError struct {
	msg    string
	fsCode string // a wasi:filesystem error-code label, if the error came from a file
}

// pollable is ready when its source says so: a monotonic-clock instant
// passed, or a socket, stream or lookup with something to report. One with
// neither is always ready: fungi's files, stdio and HTTP bodies are
// synchronous.
type pollable struct {
	timed    bool
	deadline uint64
	src      readiness // nil: ready unless timed
	parent   *family   // the resource it was made from
}

// readiness is a source of events that a pollable waits for; ready runs on
// the instance's goroutine and signals come through instance.wake.
type readiness interface{ ready() bool }

func (p *pollable) childOf() *family { return p.parent }

func (p *pollable) ready() bool {
	if p.timed {
		return monotonicNow() >= p.deadline
	}
	return p.src == nil || p.src.ready()
}

func (p *pollable) block(c *cx) {
	for !p.ready() {
		var deadline *uint64
		if p.timed {
			deadline = &p.deadline
		}
		waitEvent(c, deadline)
	}
}

// waitEvent waits for an event that may make a pollable ready: a signal on
// the instance's wake channel, or the monotonic instant deadline (nil: none).
// The call's context ending traps the guest, so a job stops and a request
// meets its deadline even while the guest waits.
func waitEvent(c *cx, deadline *uint64) {
	var timer <-chan time.Time
	if deadline != nil {
		now := monotonicNow()
		if now >= *deadline {
			return
		}
		t := time.NewTimer(time.Duration(*deadline - now))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-c.inst.wake:
	case <-timer:
	case <-c.ctx.Done():
		trapf("the call ended (%v) while the guest waited on a pollable", c.ctx.Err())
	}
}

func pollMany(c *cx, a []any) []any {
	ps := a[0].([]any)
	if len(ps) == 0 {
		trapf("poll of an empty list")
	}
	for {
		var ready []any
		var earliest *uint64
		for i, p := range ps {
			pp := p.(*pollable)
			if pp.ready() {
				ready = append(ready, uint32(i))
			} else if pp.timed && (earliest == nil || pp.deadline < *earliest) {
				earliest = &pp.deadline
			}
		}
		if len(ready) > 0 {
			return []any{ready}
		}
		waitEvent(c, earliest)
	}
}

// Streams.

type inputStream struct {
	family // its pollables
	r      io.Reader
	closer io.Closer // an HTTP body's; stdin is never closed by the guest
	closed bool
	// net, when set, is a socket's receive side: reads take what has
	// arrived and never block unless the guest asks for a blocking read.
	net    *connReader
	parent *family // the incoming-body it came from
	onDrop func()
}

func (s *inputStream) childOf() *family { return s.parent }

func (s *inputStream) drop() {
	if s.closer != nil {
		_ = s.closer.Close()
	}
	if s.onDrop != nil {
		s.onDrop()
	}
}

type outputStream struct {
	family // its pollables
	w      io.Writer
	closed bool
	parent *family // the outgoing-body it came from
	onDrop func()
}

func (s *outputStream) childOf() *family { return s.parent }

func (s *outputStream) drop() {
	if s.onDrop != nil {
		s.onDrop()
	}
}

// maxRead bounds one read a guest asks for.
const maxRead = 1 << 20

// writePermit is what check-write grants: the guest may write this much at once.
const writePermit = 1 << 20

func streamErr(err error) Variant {
	if err == nil || errors.Is(err, io.EOF) {
		return Variant{Case: 1, Val: Variant{Case: 1}} // closed
	}
	return Variant{Case: 1, Val: Variant{Case: 0, Val: &ioError{msg: err.Error(), fsCode: fsCode(err)}}}
}

func (s *inputStream) read(c *cx, n uint64, blocking bool) any {
	if s.closed {
		return streamErr(nil)
	}
	if s.net != nil {
		return s.net.read(c, n, blocking)
	}
	n = min(n, maxRead)
	c.hold(int64(n))
	buf := make([]byte, n)
	k, err := s.r.Read(buf)
	if k == 0 && n > 0 && err != nil {
		s.closed = true
		return streamErr(err)
	}
	return Variant{Val: buf[:k]}
}

func (s *outputStream) write(b []byte) any {
	if s.closed {
		return streamErr(nil)
	}
	if _, err := s.w.Write(b); err != nil {
		s.closed = true
		return streamErr(err)
	}
	return Variant{}
}

var streamFuncs = map[string]hostDef{
	"[method]input-stream.read":          {"func(len: u64) -> result<list<u8>,stream-error>", func(c *cx, a []any) []any { return []any{a[0].(*inputStream).read(c, a[1].(uint64), false)} }},
	"[method]input-stream.blocking-read": {"func(len: u64) -> result<list<u8>,stream-error>", func(c *cx, a []any) []any { return []any{a[0].(*inputStream).read(c, a[1].(uint64), true)} }},
	"[method]input-stream.skip":          {"func(len: u64) -> result<u64,stream-error>", func(c *cx, a []any) []any { return skip(c, a, false) }},
	"[method]input-stream.blocking-skip": {"func(len: u64) -> result<u64,stream-error>", func(c *cx, a []any) []any { return skip(c, a, true) }},
	"[method]input-stream.subscribe": {"func() -> pollable", func(c *cx, a []any) []any {
		s := a[0].(*inputStream)
		p := &pollable{parent: &s.family}
		if s.net != nil {
			p.src = s.net
		}
		return []any{p}
	}},
	"[method]output-stream.check-write": {"func() -> result<u64,stream-error>", func(c *cx, a []any) []any {
		if a[0].(*outputStream).closed {
			return []any{streamErr(nil)}
		}
		return []any{Variant{Val: uint64(writePermit)}}
	}},
	"[method]output-stream.write":                    {"func(contents: list<u8>) -> result<_,stream-error>", writeStream},
	"[method]output-stream.blocking-write-and-flush": {"func(contents: list<u8>) -> result<_,stream-error>", writeStream},
	"[method]output-stream.flush":                    {"func() -> result<_,stream-error>", flushStream},
	"[method]output-stream.blocking-flush":           {"func() -> result<_,stream-error>", flushStream},
	"[method]output-stream.subscribe": {"func() -> pollable", func(c *cx, a []any) []any {
		return []any{&pollable{parent: &a[0].(*outputStream).family}}
	}},
	"[method]output-stream.write-zeroes":                    {"func(len: u64) -> result<_,stream-error>", writeZeroes},
	"[method]output-stream.blocking-write-zeroes-and-flush": {"func(len: u64) -> result<_,stream-error>", writeZeroes},
	"[method]output-stream.splice":                          {"func(src: borrow<input-stream>, len: u64) -> result<u64,stream-error>", func(c *cx, a []any) []any { return splice(c, a, false) }},
	"[method]output-stream.blocking-splice":                 {"func(src: borrow<input-stream>, len: u64) -> result<u64,stream-error>", func(c *cx, a []any) []any { return splice(c, a, true) }},
}

func writeStream(c *cx, a []any) []any {
	b := a[1].([]byte)
	if len(b) > writePermit {
		trapf("wrote %d bytes, more than check-write permitted", len(b))
	}
	return []any{a[0].(*outputStream).write(b)}
}

func flushStream(c *cx, a []any) []any {
	if a[0].(*outputStream).closed {
		return []any{streamErr(nil)}
	}
	return []any{Variant{}}
}

func writeZeroes(c *cx, a []any) []any {
	n := a[1].(uint64)
	if n > writePermit {
		trapf("wrote %d zeroes, more than check-write permitted", n)
	}
	c.hold(int64(n))
	return []any{a[0].(*outputStream).write(make([]byte, n))}
}

func skip(c *cx, a []any, blocking bool) []any {
	v := a[0].(*inputStream).read(c, a[1].(uint64), blocking).(Variant)
	if v.Case != 0 {
		return []any{v}
	}
	return []any{Variant{Val: uint64(len(v.Val.([]byte)))}}
}

func splice(c *cx, a []any, blocking bool) []any {
	v := a[1].(*inputStream).read(c, a[2].(uint64), blocking).(Variant)
	if v.Case != 0 {
		return []any{v}
	}
	b := v.Val.([]byte)
	if w := a[0].(*outputStream).write(b).(Variant); w.Case != 0 {
		return []any{w}
	}
	return []any{Variant{Val: uint64(len(b))}}
}
