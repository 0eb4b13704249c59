package component

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// wasi:http: the incoming-handler export is served as an http.Handler, one
// fresh instance per request (as `wasmtime serve` does); outgoing requests
// go only where Config.Outbound allows, else HTTP-request-denied.

// fields is a wasi:http fields resource (headers or trailers).
type fields struct {
	names     []string // as given, compared case-insensitively
	values    [][]byte
	immutable bool
	budget    *hostBudget // nil for fields the guest never sees
	charged   int64       // what names and values are charged to budget
	// attached: a request or response holds these fields, and its headers
	// method hands them out again, so dropping one handle frees nothing.
	attached bool
	parent   *family // the incoming request or response they came from
}

func (f *fields) childOf() *family { return f.parent }

func newFields(c *cx) *fields { return &fields{budget: &c.inst.budget} }

// attachHeaders makes f, given to a request or response constructor, that
// message's headers: from then on its headers method hands f out as an
// immutable child of the message (WASI 0.2: set, append and delete answer
// header-error.immutable, and the message cannot be dropped or sent while
// such a handle lives). The constructor took the only handle to f.
func attachHeaders(f *fields, parent *family) *fields {
	f.attached = true
	f.immutable = true
	f.parent = parent
	return f
}

func fieldSize(name string, v []byte) int64 { return fieldCost + int64(len(name)) + int64(len(v)) }

// maxFields bounds how many header lines a guest can hold in one fields.
const maxFields = 1 << 12

func (f *fields) get(name string) []any {
	var out []any
	for i, n := range f.names {
		if strings.EqualFold(n, name) {
			out = append(out, f.values[i]) // lowered into guest memory, never kept
		}
	}
	if out == nil {
		out = []any{}
	}
	return out
}

func (f *fields) del(name string) {
	k := 0
	for i, n := range f.names {
		if !strings.EqualFold(n, name) {
			f.names[k], f.values[k] = n, f.values[i]
			k++
		} else {
			f.uncharge(fieldSize(n, f.values[i]))
		}
	}
	clear(f.names[k:])
	clear(f.values[k:])
	f.names, f.values = f.names[:k], f.values[:k]
}

func (f *fields) uncharge(n int64) {
	if f.budget != nil {
		f.budget.release(n)
		f.charged -= n
	}
}

// drop frees the fields when the guest drops the handle that owns them.
func (f *fields) drop() {
	if !f.attached {
		f.release()
	}
}

// release lets go of every line and gives back what they were charged.
func (f *fields) release() {
	f.uncharge(f.charged)
	f.names, f.values = nil, nil
}

func (f *fields) add(name string, v []byte) error {
	if len(f.names) >= maxFields {
		return fmt.Errorf("more than %d header fields", maxFields)
	}
	if f.budget != nil {
		n := fieldSize(name, v)
		f.budget.charge(n)
		f.charged += n
	}
	f.names = append(f.names, name)
	f.values = append(f.values, v)
	return nil
}

// clone shares the values, which no edit changes in place, but charges
// them again: the copy outlives the original's drop.
func (f *fields) clone(c *cx) *fields {
	n := newFields(c)
	n.budget.charge(f.charged)
	n.charged = f.charged
	n.names, n.values = append([]string(nil), f.names...), append([][]byte(nil), f.values...)
	return n
}

func validFieldName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

func validFieldValue(v []byte) bool {
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// header-error cases: invalid-syntax, forbidden, immutable.
func headerErr(label string) Variant {
	return Variant{Case: 1, Val: Variant{Case: map[string]uint32{"invalid-syntax": 0, "forbidden": 1, "immutable": 2}[label]}}
}

func fieldsEdit(a []any, edit func(f *fields, name string) Variant) []any {
	f, name := a[0].(*fields), a[1].(string)
	if f.immutable {
		return []any{headerErr("immutable")}
	}
	if !validFieldName(name) {
		return []any{headerErr("invalid-syntax")}
	}
	return []any{edit(f, name)}
}

type incomingRequest struct {
	family   // its headers
	r        *http.Request
	consumed bool
}

type incomingBody struct {
	family // its stream
	r      io.Reader
}

type futureTrailers struct{ family }

type outgoingResponse struct {
	family  // its headers
	status  uint16
	headers *fields
	body    *outgoingBody
}

// drop frees a response the guest let go of without sending it.
func (r *outgoingResponse) drop() {
	r.headers.release()
	if r.body != nil {
		r.body.release()
	}
}

// outgoingBody buffers what the guest writes until the response is set, and
// then writes straight to the client.
type outgoingBody struct {
	family  // its stream
	out     *responseOutparam
	buf     bytes.Buffer
	stream  bool
	written int64
	budget  *hostBudget // nil: nothing is buffered for the guest
	charged int64       // what buf's bytes are charged to budget
}

func newOutgoingBody(c *cx) *outgoingBody { return &outgoingBody{budget: &c.inst.budget} }

// release lets go of what is buffered and gives back its charge.
func (b *outgoingBody) release() {
	if b.budget != nil {
		b.budget.release(b.charged)
	}
	b.charged = 0
	b.buf = bytes.Buffer{}
}

// maxBufferedBody bounds a body the guest writes before it sets the response.
const maxBufferedBody = 16 << 20

func (b *outgoingBody) Write(p []byte) (int, error) {
	if b.out != nil && b.out.sent {
		b.written += int64(len(p))
		return b.out.w.Write(p)
	}
	if b.buf.Len()+len(p) > maxBufferedBody {
		return 0, fmt.Errorf("more than %d bytes of body written before the response was set", maxBufferedBody)
	}
	if need := b.buf.Len() + len(p); b.budget != nil && need > b.buf.Cap() {
		// The buffer doubles as it grows, and the old one is copied into
		// the new: both are charged until the copy is done.
		old, capacity := b.buf.Cap(), max(2*b.buf.Cap(), need)
		b.budget.charge(int64(capacity))
		b.buf.Grow(capacity - b.buf.Len())
		b.budget.release(int64(old))
		b.charged += int64(capacity - old)
	}
	return b.buf.Write(p)
}

type responseOutparam struct {
	w    http.ResponseWriter
	sent bool
	set  bool
	err  string
}

func methodVariant(m string) Variant {
	for i, n := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"} {
		if m == n {
			return Variant{Case: uint32(i)}
		}
	}
	return Variant{Case: 9, Val: m}
}

// httpHost is the wasi:http part of hostFuncs.
var httpHost = map[string]map[string]hostDef{
	"wasi:http/types": httpFuncs,
	"wasi:http/outgoing-handler": {
		"handle": {"func(request: outgoing-request, options: option<request-options>) -> result<future-incoming-response,error-code>", outgoingHandle},
	},
}

var httpFuncs = map[string]hostDef{
	"[constructor]fields": {"func()", func(c *cx, a []any) []any { return []any{newFields(c)} }},
	"[static]fields.from-list": {"func(entries: list<tuple<field-name,field-value>>) -> result<fields,header-error>", func(c *cx, a []any) []any {
		f := newFields(c)
		for _, e := range a[0].([]any) {
			kv := e.([]any)
			n, v := kv[0].(string), kv[1].([]byte)
			if !validFieldName(n) || !validFieldValue(v) {
				return []any{headerErr("invalid-syntax")}
			}
			if err := f.add(n, v); err != nil {
				trapf("%v", err)
			}
		}
		return []any{Variant{Val: f}}
	}},
	"[method]fields.get": {"func(name: field-name) -> list<field-value>", func(c *cx, a []any) []any { return []any{a[0].(*fields).get(a[1].(string))} }},
	"[method]fields.has": {"func(name: field-name) -> bool", func(c *cx, a []any) []any { return []any{len(a[0].(*fields).get(a[1].(string))) > 0} }},
	"[method]fields.set": {"func(name: field-name, value: list<field-value>) -> result<_,header-error>", func(c *cx, a []any) []any {
		return fieldsEdit(a, func(f *fields, name string) Variant {
			vs := a[2].([]any)
			for _, v := range vs {
				if !validFieldValue(v.([]byte)) {
					return headerErr("invalid-syntax")
				}
			}
			f.del(name)
			for _, v := range vs {
				if err := f.add(name, v.([]byte)); err != nil {
					trapf("%v", err)
				}
			}
			return Variant{}
		})
	}},
	"[method]fields.delete": {"func(name: field-name) -> result<_,header-error>", func(c *cx, a []any) []any {
		return fieldsEdit(a, func(f *fields, name string) Variant { f.del(name); return Variant{} })
	}},
	"[method]fields.append": {"func(name: field-name, value: field-value) -> result<_,header-error>", func(c *cx, a []any) []any {
		return fieldsEdit(a, func(f *fields, name string) Variant {
			v := a[2].([]byte)
			if !validFieldValue(v) {
				return headerErr("invalid-syntax")
			}
			if err := f.add(name, v); err != nil {
				trapf("%v", err)
			}
			return Variant{}
		})
	}},
	"[method]fields.entries": {"func() -> list<tuple<field-name,field-value>>", func(c *cx, a []any) []any {
		f := a[0].(*fields)
		c.hold(int64(len(f.names)) * fieldCost)
		out := make([]any, len(f.names))
		for i := range f.names {
			out[i] = []any{f.names[i], f.values[i]} // lowered into guest memory, never kept
		}
		return []any{out}
	}},
	"[method]fields.clone": {"func() -> fields", func(c *cx, a []any) []any { return []any{a[0].(*fields).clone(c)} }},

	"[method]incoming-request.method": {"func() -> method", func(c *cx, a []any) []any { return []any{methodVariant(a[0].(*incomingRequest).r.Method)} }},
	"[method]incoming-request.path-with-query": {"func() -> option<string>", func(c *cx, a []any) []any {
		return []any{Variant{Case: 1, Val: a[0].(*incomingRequest).r.URL.RequestURI()}}
	}},
	"[method]incoming-request.scheme": {"func() -> option<scheme>", func(c *cx, a []any) []any {
		if a[0].(*incomingRequest).r.TLS != nil {
			return []any{Variant{Case: 1, Val: Variant{Case: 1}}}
		}
		return []any{Variant{Case: 1, Val: Variant{Case: 0}}}
	}},
	"[method]incoming-request.authority": {"func() -> option<string>", func(c *cx, a []any) []any {
		return []any{Variant{Case: 1, Val: a[0].(*incomingRequest).r.Host}}
	}},
	"[method]incoming-request.headers": {"func() -> headers", func(c *cx, a []any) []any {
		req := a[0].(*incomingRequest)
		f := headerFields(c, req.r.Header)
		f.parent = &req.family
		return []any{f}
	}},
	"[method]incoming-request.consume": {"func() -> result<incoming-body>", func(c *cx, a []any) []any {
		req := a[0].(*incomingRequest)
		if req.consumed {
			return []any{Variant{Case: 1}}
		}
		req.consumed = true
		return []any{Variant{Val: &incomingBody{r: req.r.Body}}}
	}},
	"[method]incoming-body.stream": {"func() -> result<input-stream>", func(c *cx, a []any) []any {
		b := a[0].(*incomingBody)
		if b.r == nil {
			return []any{Variant{Case: 1}}
		}
		s := &inputStream{r: b.r, parent: &b.family}
		s.closer, _ = b.r.(io.Closer)
		b.r = nil
		return []any{Variant{Val: s}}
	}},
	"[static]incoming-body.finish": {"func(this: incoming-body) -> future-trailers", func(c *cx, a []any) []any { return []any{&futureTrailers{}} }},
	"[method]future-trailers.subscribe": {"func() -> pollable", func(c *cx, a []any) []any {
		return []any{&pollable{parent: &a[0].(*futureTrailers).family}}
	}},
	"[method]future-trailers.get": {"func() -> option<result<result<option<trailers>,error-code>>>", func(c *cx, a []any) []any {
		// some(ok(ok(none))): the trailers are ready, and there are none.
		return []any{Variant{Case: 1, Val: Variant{Val: Variant{Val: Variant{}}}}}
	}},
	"[constructor]outgoing-response": {"func(headers: headers)", func(c *cx, a []any) []any {
		r := &outgoingResponse{status: 200}
		r.headers = attachHeaders(a[0].(*fields), &r.family)
		return []any{r}
	}},
	"[method]outgoing-response.status-code": {"func() -> status-code", func(c *cx, a []any) []any { return []any{a[0].(*outgoingResponse).status} }},
	"[method]outgoing-response.set-status-code": {"func(status-code: status-code) -> result", func(c *cx, a []any) []any {
		s := a[1].(uint16)
		if s < 100 || s > 999 {
			return []any{Variant{Case: 1}}
		}
		a[0].(*outgoingResponse).status = s
		return []any{Variant{}}
	}},
	"[method]outgoing-response.headers": {"func() -> headers", func(c *cx, a []any) []any { return []any{a[0].(*outgoingResponse).headers} }},
	"[method]outgoing-response.body": {"func() -> result<outgoing-body>", func(c *cx, a []any) []any {
		r := a[0].(*outgoingResponse)
		if r.body != nil {
			return []any{Variant{Case: 1}}
		}
		r.body = newOutgoingBody(c)
		return []any{Variant{Val: r.body}}
	}},
	"[method]outgoing-body.write": {"func() -> result<output-stream>", func(c *cx, a []any) []any {
		b := a[0].(*outgoingBody)
		if b.stream {
			return []any{Variant{Case: 1}}
		}
		b.stream = true
		return []any{Variant{Val: &outputStream{w: b, parent: &b.family}}}
	}},
	"[static]outgoing-body.finish": {"func(this: outgoing-body, trailers: option<trailers>) -> result<_,error-code>", func(c *cx, a []any) []any {
		if t, ok := a[1].(Variant); ok && t.Case == 1 {
			t.Val.(*fields).release() // trailers: fungi sends none
		}
		return []any{Variant{}}
	}},
	"[static]response-outparam.set": {"func(param: response-outparam, response: result<outgoing-response,error-code>)", func(c *cx, a []any) []any {
		p, res := a[0].(*responseOutparam), a[1].(Variant)
		if p.set {
			trapf("response-outparam.set called twice")
		}
		p.set = true
		if res.Case != 0 {
			p.err = fmt.Sprintf("the component answered with error-code case %d", res.Val.(Variant).Case)
			return nil
		}
		r := res.Val.(*outgoingResponse)
		h := p.w.Header()
		for i, n := range r.headers.names {
			h.Add(n, string(r.headers.values[i]))
		}
		r.headers.immutable = true
		p.w.WriteHeader(int(r.status))
		p.sent = true
		if r.body == nil {
			r.body = &outgoingBody{}
		}
		r.body.out = p
		if r.body.buf.Len() > 0 {
			_, _ = p.w.Write(r.body.buf.Bytes())
		}
		r.body.release()
		return nil
	}},
	"http-error-code": {"func(err: borrow<io-error>) -> option<error-code>", func(c *cx, a []any) []any { return []any{Variant{}} }},
}

// headerFields copies h into fields for the guest, charged to its budget.
func headerFields(c *cx, h http.Header) *fields {
	f := newFields(c)
	f.immutable = true
	for n, vs := range h {
		name := strings.ToLower(n)
		for _, v := range vs {
			if len(f.names) >= maxFields {
				return f
			}
			size := fieldSize(name, nil) + int64(len(v))
			f.budget.charge(size)
			f.charged += size
			f.names = append(f.names, name)
			f.values = append(f.values, []byte(v))
		}
	}
	return f
}

func (b *incomingBody) drop() {
	if c, ok := b.r.(io.Closer); ok {
		_ = c.Close()
	}
}

// Handler serves the component's wasi:http/incoming-handler export: every
// request gets a fresh instance, as `wasmtime serve` does. A trap before the
// response is set answers 500 and the handler keeps serving; the trap goes
// to cfg.Stderr. A request whose context deadline passes answers 504 (the
// runtime must be made WithCloseOnContextDone to stop a running guest).
// Concurrency and memory limits are the caller's: wrap the handler and
// configure the wazero runtime.
func (c *Component) Handler(cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.kind != KindHTTP {
			http.Error(w, "the component is not an HTTP handler", http.StatusInternalServerError)
			return
		}
		ws, err := newWASI(&cfg)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer ws.close()
		inst, err := c.instantiate(r.Context(), ws)
		if err != nil && errors.Is(r.Context().Err(), context.DeadlineExceeded) {
			http.Error(w, "the component did not answer in time", http.StatusGatewayTimeout)
			return
		}
		if err != nil {
			fmt.Fprintf(ws.stderr, "component: instantiate: %v\n", err)
			http.Error(w, "the component failed to start", http.StatusInternalServerError)
			return
		}
		defer inst.close()
		out := &responseOutparam{w: w}
		_, err = inst.call(c.handle, []any{&incomingRequest{r: r}, out})
		switch {
		case err != nil && !out.sent && errors.Is(r.Context().Err(), context.DeadlineExceeded):
			fmt.Fprintf(ws.stderr, "component: the request ran past its deadline: %v\n", err)
			http.Error(w, "the component did not answer in time", http.StatusGatewayTimeout)
		case err != nil && !out.sent:
			fmt.Fprintf(ws.stderr, "component: the request handler trapped: %v\n", err)
			http.Error(w, "the component trapped", http.StatusInternalServerError)
		case err != nil:
			fmt.Fprintf(ws.stderr, "component: the request handler trapped after the response started: %v\n", err)
			panic(http.ErrAbortHandler)
		case !out.set:
			http.Error(w, "the component returned without setting a response", http.StatusInternalServerError)
		case !out.sent:
			fmt.Fprintf(ws.stderr, "component: %s\n", out.err)
			http.Error(w, "the component answered with an error", http.StatusInternalServerError)
		}
	})
}
