package component

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// wasi:http/outgoing-handler and the outgoing side of wasi:http/types: a
// guest's requests out, sent only where Config.Outbound allows.

// outgoingHandle sends a guest's request when Config.Outbound allows its
// target and answers HTTP-request-denied otherwise (always, by default).
// The address is checked again when the connection is made.
func outgoingHandle(c *cx, a []any) []any {
	errCode := c.ft.results[0].cases[1]
	req := a[0].(*outgoingRequest)
	if err := c.inst.wasi.cfg.Outbound.checkRequest(req.scheme, req.authority); outboundRefused(c, err) {
		return []any{Variant{Case: 1, Val: Variant{Case: caseIndex(errCode, "HTTP-request-denied")}}}
	}
	f := &futureResponse{req: req, timeout: outboundTimeout}
	if o := a[1].(Variant); o.Case == 1 {
		opts := o.Val.(*requestOptions)
		if t := opts.total(); t > 0 {
			f.timeout = t
		}
	}
	return []any{Variant{Val: f}}
}

// outboundTimeout bounds an outgoing request the guest set no timeout for.
const outboundTimeout = 30 * time.Second

// maxOutboundBody bounds a response body a guest reads from outside.
const maxOutboundBody = 64 << 20

type outgoingRequest struct {
	family    // its headers
	method    string
	path      string
	scheme    string
	authority string
	headers   *fields
	body      *outgoingBody
}

type requestOptions struct{ connect, firstByte, betweenBytes uint64 }

func (o *requestOptions) total() time.Duration {
	return time.Duration(o.connect + o.firstByte + o.betweenBytes)
}

type incomingResponse struct {
	family   // its headers
	resp     *http.Response
	consumed bool
}

func (r *incomingResponse) drop() {
	if !r.consumed {
		_ = r.resp.Body.Close()
	}
}

// futureResponse sends its request the first time the guest asks for the
// response (by then the guest has written and finished the body).
type futureResponse struct {
	family  // its pollables
	req     *outgoingRequest
	timeout time.Duration
	done    bool
	resp    *http.Response
	err     error
	taken   bool
}

func (f *futureResponse) send(c *cx) {
	if f.done {
		return
	}
	f.done = true
	r := f.req
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body.buf.Bytes())
	}
	ctx, cancel := context.WithTimeout(c.ctx, f.timeout)
	u := r.scheme + "://" + r.authority + r.path
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		cancel()
		f.err = err
		return
	}
	for i, n := range r.headers.names {
		req.Header.Add(n, string(r.headers.values[i]))
	}
	resp, err := c.inst.wasi.cfg.Outbound.httpClient().Do(req)
	if err != nil {
		cancel()
		f.err = err
		return
	}
	resp.Body = &cancelOnClose{ReadCloser: struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, maxOutboundBody), resp.Body}, cancel: cancel}
	f.resp = resp
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error { c.cancel(); return c.ReadCloser.Close() }

func methodString(v Variant) string {
	names := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
	if int(v.Case) < len(names) {
		return names[v.Case]
	}
	return v.Val.(string)
}

func optString(v any) (string, bool) {
	o := v.(Variant)
	if o.Case == 0 {
		return "", false
	}
	return o.Val.(string), true
}

func schemeString(v Variant) string {
	switch v.Case {
	case 0:
		return "http"
	case 1:
		return "https"
	}
	return v.Val.(string)
}

func init() {
	for name, f := range map[string]hostDef{
		"[constructor]outgoing-request": {"func(headers: headers)", func(c *cx, a []any) []any {
			r := &outgoingRequest{method: "GET", path: "/", scheme: "https"}
			r.headers = attachHeaders(a[0].(*fields), &r.family)
			return []any{r}
		}},
		"[method]outgoing-request.body": {"func() -> result<outgoing-body>", func(c *cx, a []any) []any {
			r := a[0].(*outgoingRequest)
			if r.body != nil {
				return []any{Variant{Case: 1}}
			}
			r.body = newOutgoingBody(c)
			return []any{Variant{Val: r.body}}
		}},
		"[method]outgoing-request.method": {"func() -> method", func(c *cx, a []any) []any {
			return []any{methodVariant(a[0].(*outgoingRequest).method)}
		}},
		"[method]outgoing-request.set-method": {"func(method: method) -> result", func(c *cx, a []any) []any {
			a[0].(*outgoingRequest).method = methodString(a[1].(Variant))
			return []any{Variant{}}
		}},
		"[method]outgoing-request.path-with-query": {"func() -> option<string>", func(c *cx, a []any) []any {
			return []any{Variant{Case: 1, Val: a[0].(*outgoingRequest).path}}
		}},
		"[method]outgoing-request.set-path-with-query": {"func(path-with-query: option<string>) -> result", func(c *cx, a []any) []any {
			p, ok := optString(a[1])
			if !ok {
				p = "/"
			}
			if !strings.HasPrefix(p, "/") {
				return []any{Variant{Case: 1}}
			}
			a[0].(*outgoingRequest).path = p
			return []any{Variant{}}
		}},
		"[method]outgoing-request.scheme": {"func() -> option<scheme>", func(c *cx, a []any) []any {
			return []any{Variant{Case: 1, Val: map[string]Variant{"http": {Case: 0}, "https": {Case: 1}}[a[0].(*outgoingRequest).scheme]}}
		}},
		"[method]outgoing-request.set-scheme": {"func(scheme: option<scheme>) -> result", func(c *cx, a []any) []any {
			r := a[0].(*outgoingRequest)
			r.scheme = "https"
			if o := a[1].(Variant); o.Case == 1 {
				r.scheme = schemeString(o.Val.(Variant))
			}
			if r.scheme != "http" && r.scheme != "https" {
				return []any{Variant{Case: 1}}
			}
			return []any{Variant{}}
		}},
		"[method]outgoing-request.authority": {"func() -> option<string>", func(c *cx, a []any) []any {
			return []any{Variant{Case: 1, Val: a[0].(*outgoingRequest).authority}}
		}},
		"[method]outgoing-request.set-authority": {"func(authority: option<string>) -> result", func(c *cx, a []any) []any {
			s, _ := optString(a[1])
			a[0].(*outgoingRequest).authority = s
			return []any{Variant{}}
		}},
		"[method]outgoing-request.headers": {"func() -> headers", func(c *cx, a []any) []any { return []any{a[0].(*outgoingRequest).headers} }},
		"[constructor]request-options":     {"func()", func(c *cx, a []any) []any { return []any{&requestOptions{}} }},
		"[method]request-options.connect-timeout": {"func() -> option<duration>", func(c *cx, a []any) []any {
			return []any{Variant{Case: 1, Val: a[0].(*requestOptions).connect}}
		}},
		"[method]request-options.set-connect-timeout": {"func(duration: option<duration>) -> result", func(c *cx, a []any) []any {
			a[0].(*requestOptions).connect = optU64(a[1])
			return []any{Variant{}}
		}},
		"[method]request-options.first-byte-timeout": {"func() -> option<duration>", func(c *cx, a []any) []any {
			return []any{Variant{Case: 1, Val: a[0].(*requestOptions).firstByte}}
		}},
		"[method]request-options.set-first-byte-timeout": {"func(duration: option<duration>) -> result", func(c *cx, a []any) []any {
			a[0].(*requestOptions).firstByte = optU64(a[1])
			return []any{Variant{}}
		}},
		"[method]request-options.between-bytes-timeout": {"func() -> option<duration>", func(c *cx, a []any) []any {
			return []any{Variant{Case: 1, Val: a[0].(*requestOptions).betweenBytes}}
		}},
		"[method]request-options.set-between-bytes-timeout": {"func(duration: option<duration>) -> result", func(c *cx, a []any) []any {
			a[0].(*requestOptions).betweenBytes = optU64(a[1])
			return []any{Variant{}}
		}},
		"[method]future-incoming-response.subscribe": {"func() -> pollable", func(c *cx, a []any) []any {
			return []any{&pollable{parent: &a[0].(*futureResponse).family}}
		}},
		"[method]future-incoming-response.get": {"func() -> option<result<result<incoming-response,error-code>>>", func(c *cx, a []any) []any {
			f := a[0].(*futureResponse)
			f.send(c)
			if f.taken {
				return []any{Variant{Case: 1, Val: Variant{Case: 1}}}
			}
			f.taken = true
			if f.err != nil {
				errCode := c.ft.results[0].elem.cases[0].cases[1]
				code := Variant{Case: caseIndex(errCode, "internal-error"), Val: Variant{Case: 1, Val: f.err.Error()}}
				if outboundRefused(c, f.err) {
					code = Variant{Case: caseIndex(errCode, "HTTP-request-denied")}
				} else if errors.Is(f.err, context.DeadlineExceeded) {
					code = Variant{Case: caseIndex(errCode, "connection-timeout")}
				}
				return []any{Variant{Case: 1, Val: Variant{Val: Variant{Case: 1, Val: code}}}}
			}
			return []any{Variant{Case: 1, Val: Variant{Val: Variant{Val: &incomingResponse{resp: f.resp}}}}}
		}},
		"[method]incoming-response.status": {"func() -> status-code", func(c *cx, a []any) []any {
			return []any{uint16(a[0].(*incomingResponse).resp.StatusCode)}
		}},
		"[method]incoming-response.headers": {"func() -> headers", func(c *cx, a []any) []any {
			r := a[0].(*incomingResponse)
			f := headerFields(c, r.resp.Header)
			f.parent = &r.family
			return []any{f}
		}},
		"[method]incoming-response.consume": {"func() -> result<incoming-body>", func(c *cx, a []any) []any {
			r := a[0].(*incomingResponse)
			if r.consumed {
				return []any{Variant{Case: 1}}
			}
			r.consumed = true
			return []any{Variant{Val: &incomingBody{r: r.resp.Body}}}
		}},
	} {
		httpFuncs[name] = f
	}
}

func optU64(v any) uint64 {
	o := v.(Variant)
	if o.Case == 0 {
		return 0
	}
	return o.Val.(uint64)
}
