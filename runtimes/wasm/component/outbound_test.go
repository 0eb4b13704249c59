package component

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// hostCall calls a wasi:http host function the way a lowered import does,
// with the result type it names (only the labels matter here).
func hostCall(t *testing.T, cfg *Config, name string, ft *funcType, args ...any) []any {
	t.Helper()
	inst := &instance{wasi: &wasiState{cfg: cfg}}
	c := &cx{ctx: context.Background(), inst: inst, ft: ft}
	f := httpFuncs[name]
	if name == "handle" {
		f = outgoingHandle
	}
	if f == nil {
		t.Fatalf("no host function %s", name)
	}
	return f(c, args)
}

func errorCodeType() *vtype {
	return &vtype{kind: kVariant, labels: []string{"DNS-timeout", "HTTP-request-denied", "connection-timeout", "internal-error"},
		cases: []*vtype{nil, nil, nil, {kind: kOption}}}
}

func TestOutgoingHandlerRefusesUnlessAllowed(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo", r.Header.Get("X-Guest"))
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
	}))
	defer srv.Close()
	handleT := &funcType{results: []*vtype{{kind: kResult, cases: []*vtype{nil, errorCodeType()}}}}
	getT := &funcType{results: []*vtype{{kind: kOption, elem: &vtype{kind: kResult, cases: []*vtype{
		{kind: kResult, cases: []*vtype{nil, errorCodeType()}}, nil}}}}}

	newRequest := func() *outgoingRequest {
		h := &fields{}
		_ = h.add("X-Guest", []byte("yes"))
		r := hostCall(t, &Config{}, "[constructor]outgoing-request", nil, h)[0].(*outgoingRequest)
		hostCall(t, &Config{}, "[method]outgoing-request.set-method", nil, r, Variant{Case: 2})
		hostCall(t, &Config{}, "[method]outgoing-request.set-scheme", nil, r, Variant{Case: 1, Val: Variant{Case: 0}})
		hostCall(t, &Config{}, "[method]outgoing-request.set-authority", nil, r, Variant{Case: 1, Val: strings.TrimPrefix(srv.URL, "http://")})
		hostCall(t, &Config{}, "[method]outgoing-request.set-path-with-query", nil, r, Variant{Case: 1, Val: "/echo"})
		body := hostCall(t, &Config{}, "[method]outgoing-request.body", nil, r)[0].(Variant).Val.(*outgoingBody)
		_, _ = body.Write([]byte("ping"))
		return r
	}

	denied := hostCall(t, &Config{}, "handle", handleT, newRequest(), Variant{})[0].(Variant)
	if denied.Case != 1 || denied.Val.(Variant).Case != 1 {
		t.Fatalf("default policy: %#v, want err(HTTP-request-denied)", denied)
	}
	if hits != 0 {
		t.Fatalf("the server was reached %d times while outbound HTTP is refused", hits)
	}

	allowed := &Config{AllowOutboundHTTP: true}
	res := hostCall(t, allowed, "handle", handleT, newRequest(), Variant{})[0].(Variant)
	if res.Case != 0 {
		t.Fatalf("allowed: %#v, want ok(future)", res)
	}
	got := hostCall(t, allowed, "[method]future-incoming-response.get", getT, res.Val)[0].(Variant)
	resp := got.Val.(Variant).Val.(Variant).Val.(*incomingResponse)
	if st := hostCall(t, allowed, "[method]incoming-response.status", nil, resp)[0].(uint16); st != 200 {
		t.Fatalf("status %d", st)
	}
	hdr := hostCall(t, allowed, "[method]incoming-response.headers", nil, resp)[0].(*fields)
	if v := hdr.get("x-echo"); len(v) != 1 || string(v[0].([]byte)) != "yes" {
		t.Fatalf("x-echo header %v", v)
	}
	body := hostCall(t, allowed, "[method]incoming-response.consume", nil, resp)[0].(Variant).Val.(*incomingBody)
	s := hostCall(t, allowed, "[method]incoming-body.stream", nil, body)[0].(Variant).Val.(*inputStream)
	b, _ := io.ReadAll(s.r)
	if string(b) != "POST /echo ping" {
		t.Fatalf("body %q, want the server's echo", b)
	}
	body.drop()
	if hits != 1 {
		t.Fatalf("%d hits, want 1", hits)
	}
}
