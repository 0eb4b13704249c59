package component

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// hostCall calls a wasi:http host function the way a lowered import does,
// with the result type it names (only the labels matter here).
func hostCall(t *testing.T, cfg *Config, name string, ft *funcType, args ...any) []any {
	t.Helper()
	inst := &instance{wasi: &wasiState{cfg: cfg, stderr: cfg.Stderr}}
	c := &cx{ctx: context.Background(), inst: inst, ft: ft}
	f := httpFuncs[name].fn
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

// The result types of outgoing-handler.handle and future-incoming-response.get.
var (
	handleT = &funcType{results: []*vtype{{kind: kResult, cases: []*vtype{nil, errorCodeType()}}}}
	getT    = &funcType{results: []*vtype{{kind: kOption, elem: &vtype{kind: kResult, cases: []*vtype{
		{kind: kResult, cases: []*vtype{nil, errorCodeType()}}, nil}}}}}
)

const deniedCase = 1 // HTTP-request-denied in errorCodeType

// guestRequest builds a POST to http://authority/echo with a body and a
// header, through the host functions a guest calls.
func guestRequest(t *testing.T, authority string) *outgoingRequest {
	t.Helper()
	cfg := &Config{}
	h := &fields{}
	_ = h.add("X-Guest", []byte("yes"))
	r := hostCall(t, cfg, "[constructor]outgoing-request", nil, h)[0].(*outgoingRequest)
	hostCall(t, cfg, "[method]outgoing-request.set-method", nil, r, Variant{Case: 2})
	hostCall(t, cfg, "[method]outgoing-request.set-scheme", nil, r, Variant{Case: 1, Val: Variant{Case: 0}})
	hostCall(t, cfg, "[method]outgoing-request.set-authority", nil, r, Variant{Case: 1, Val: authority})
	hostCall(t, cfg, "[method]outgoing-request.set-path-with-query", nil, r, Variant{Case: 1, Val: "/echo"})
	body := hostCall(t, cfg, "[method]outgoing-request.body", nil, r)[0].(Variant).Val.(*outgoingBody)
	_, _ = body.Write([]byte("ping"))
	return r
}

// outcome is what the guest got for one request: refused at handle,
// refused when the response was awaited, or a response.
type outcome struct {
	deniedAtHandle, deniedAtGet bool
	otherErr                    *Variant
	status                      uint16
	header, body                string
}

// send hands r to outgoing-handler.handle and awaits the response, as a
// guest does.
func send(t *testing.T, cfg *Config, r *outgoingRequest) outcome {
	t.Helper()
	res := hostCall(t, cfg, "handle", handleT, r, Variant{})[0].(Variant)
	if res.Case == 1 {
		if code := res.Val.(Variant); code.Case != deniedCase {
			t.Fatalf("handle answered error-code case %d, want HTTP-request-denied or ok", code.Case)
		}
		return outcome{deniedAtHandle: true}
	}
	got := hostCall(t, cfg, "[method]future-incoming-response.get", getT, res.Val)[0].(Variant)
	inner := got.Val.(Variant).Val.(Variant)
	if inner.Case == 1 {
		code := inner.Val.(Variant)
		if code.Case == deniedCase {
			return outcome{deniedAtGet: true}
		}
		return outcome{otherErr: &code}
	}
	resp := inner.Val.(*incomingResponse)
	out := outcome{status: hostCall(t, cfg, "[method]incoming-response.status", nil, resp)[0].(uint16)}
	hdr := hostCall(t, cfg, "[method]incoming-response.headers", nil, resp)[0].(*fields)
	if v := hdr.get("x-echo"); len(v) == 1 {
		out.header = string(v[0].([]byte))
	}
	body := hostCall(t, cfg, "[method]incoming-response.consume", nil, resp)[0].(Variant).Val.(*incomingBody)
	s := hostCall(t, cfg, "[method]incoming-body.stream", nil, body)[0].(Variant).Val.(*inputStream)
	b, _ := io.ReadAll(s.r)
	body.drop()
	out.body = string(b)
	return out
}

// echoServer answers on 127.0.0.1 with the request it got, and counts.
func echoServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo", r.Header.Get("X-Guest"))
		_, _ = io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func serverPort(t *testing.T, srv *httptest.Server) string {
	_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// noLookup fails a test that resolves a name it should not have.
func noLookup(t *testing.T) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		t.Errorf("%s was resolved", host)
		return nil, errors.New("no lookups in this test")
	}
}

// resolvesTo answers every lookup of name with addrs; other names fail.
func resolvesTo(name string, addrs ...string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		if host != name {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

// rules reads allowOutboundHttp entries as the manifest writes them (the
// manifest package parses them for real).
func rules(entries ...string) []OutboundRule {
	var out []OutboundRule
	for _, e := range entries {
		host, port := e, 0
		if h, p, err := net.SplitHostPort(e); err == nil {
			host = h
			port, _ = strconv.Atoi(p)
		}
		if pfx, err := netip.ParsePrefix(host); err == nil {
			out = append(out, OutboundRule{Network: pfx, Port: port})
		} else if a, err := netip.ParseAddr(host); err == nil {
			out = append(out, OutboundRule{Network: netip.PrefixFrom(a, a.BitLen()), Port: port})
		} else {
			out = append(out, OutboundRule{Name: host, Port: port})
		}
	}
	return out
}

func TestOutboundPolicyTable(t *testing.T) {
	internet := func(lookup func(context.Context, string) ([]netip.Addr, error)) *OutboundPolicy {
		return &OutboundPolicy{Internet: true, Setting: "spec.allowOutboundHttp", Lookup: lookup}
	}
	list := func(lookup func(context.Context, string) ([]netip.Addr, error), entries ...string) *OutboundPolicy {
		return &OutboundPolicy{Allow: rules(entries...), Setting: "spec.allowOutboundHttp", Lookup: lookup}
	}
	tests := []struct {
		name   string
		policy *OutboundPolicy
		host   string
		port   int
		want   []string // the addresses dialled; nil: refused
		reason string   // part of the refusal
	}{
		{"nil refuses", nil, "8.8.8.8", 80, nil, "outbound HTTP is off"},
		{"empty refuses", list(noLookup(t)), "8.8.8.8", 80, nil, "spec.allowOutboundHttp allows no outbound HTTP; set it to true for the public internet, or list the hosts"},
		{"empty refuses names unresolved", list(noLookup(t)), "api.test", 443, nil, "allows no outbound HTTP"},
		{"true: public v4", internet(noLookup(t)), "8.8.8.8", 80, []string{"8.8.8.8"}, ""},
		{"true: public v6", internet(noLookup(t)), "2606:4700:4700::1111", 443, []string{"2606:4700:4700::1111"}, ""},
		{"true: NAT64 of a public address", internet(noLookup(t)), "64:ff9b::808:808", 80, []string{"64:ff9b::808:808"}, ""},
		{"true: loopback", internet(noLookup(t)), "127.0.0.1", 80, nil, "127.0.0.1 is a loopback address; spec.allowOutboundHttp reaches such an address only when it lists it"},
		{"true: loopback 127/8", internet(noLookup(t)), "127.0.0.2", 80, nil, "loopback"},
		{"true: private 10/8", internet(noLookup(t)), "10.0.0.1", 80, nil, "10.0.0.1 is a private address (RFC 1918)"},
		{"true: private 172.16/12", internet(noLookup(t)), "172.16.5.4", 80, nil, "private"},
		{"true: private 192.168/16", internet(noLookup(t)), "192.168.1.1", 80, nil, "private"},
		{"true: metadata service", internet(noLookup(t)), "169.254.169.254", 80, nil, "169.254.169.254 is a link-local address"},
		{"true: v6 loopback", internet(noLookup(t)), "::1", 80, nil, "::1 is a loopback address"},
		{"true: v6 link-local", internet(noLookup(t)), "fe80::1", 80, nil, "fe80::1 is a link-local address"},
		{"true: v6 unique local", internet(noLookup(t)), "fd00::1", 80, nil, "unique local"},
		{"true: CGNAT", internet(noLookup(t)), "100.64.0.1", 80, nil, "100.64.0.1 is a shared (carrier-grade NAT) address"},
		{"true: unspecified", internet(noLookup(t)), "0.0.0.0", 80, nil, "0.0.0.0/8"},
		{"true: v6 unspecified", internet(noLookup(t)), "::", 80, nil, "unspecified"},
		{"true: multicast", internet(noLookup(t)), "224.0.0.1", 80, nil, "multicast"},
		{"true: broadcast", internet(noLookup(t)), "255.255.255.255", 80, nil, "reserved"},
		{"true: v4-mapped loopback", internet(noLookup(t)), "::ffff:127.0.0.1", 80, nil, "::ffff:127.0.0.1 is a loopback address; spec.allowOutboundHttp reaches such an address only when it lists it (e.g. \"127.0.0.1\")"},
		{"true: NAT64 of loopback", internet(noLookup(t)), "64:ff9b::7f00:1", 80, nil, "loopback address (through NAT64)"},
		{"true: 6to4 of a private address", internet(noLookup(t)), "2002:a00:1::", 80, nil, "private address (RFC 1918) (through 6to4)"},
		{"true: documentation", internet(noLookup(t)), "192.0.2.1", 80, nil, "documentation"},
		{"true: name to public", internet(resolvesTo("api.test", "93.184.216.34")), "api.test", 443, []string{"93.184.216.34"}, ""},
		{"true: name to loopback", internet(resolvesTo("rebind.test", "127.0.0.1")), "rebind.test", 80, nil, "rebind.test resolves to 127.0.0.1, a loopback address"},
		{"true: name to metadata", internet(resolvesTo("meta.test", "169.254.169.254")), "meta.test", 80, nil, "link-local"},
		{"true: name to mixed dials the public one only", internet(resolvesTo("mixed.test", "127.0.0.1", "8.8.8.8", "10.1.1.1")), "mixed.test", 80, []string{"8.8.8.8"}, ""},
		{"list 127.0.0.1: loopback", list(noLookup(t), "127.0.0.1"), "127.0.0.1", 8080, []string{"127.0.0.1"}, ""},
		{"list 127.0.0.1: another loopback", list(noLookup(t), "127.0.0.1"), "127.0.0.2", 8080, nil, "loopback"},
		{"list 127.0.0.1: public unlisted", list(noLookup(t), "127.0.0.1"), "8.8.8.8", 80, nil, "8.8.8.8:80 is not listed in spec.allowOutboundHttp"},
		{"list 127.0.0.1: an unlisted name is not resolved", list(noLookup(t), "127.0.0.1"), "localhost", 80, nil, "localhost:80 is not listed"},
		{"list name: to public", list(resolvesTo("svc.test", "8.8.4.4"), "svc.test"), "svc.test", 80, []string{"8.8.4.4"}, ""},
		{"list name: case and final dot", list(resolvesTo("SVC.test.", "8.8.4.4"), "svc.test"), "SVC.test.", 80, []string{"8.8.4.4"}, ""},
		{"list name: to loopback", list(resolvesTo("svc.test", "127.0.0.1"), "svc.test"), "svc.test", 80, nil, "svc.test resolves to 127.0.0.1, a loopback address"},
		{"list name: to private", list(resolvesTo("svc.test", "192.168.1.20"), "svc.test"), "svc.test", 80, nil, "private"},
		{"list name and address: to loopback", list(resolvesTo("svc.test", "127.0.0.1"), "svc.test", "127.0.0.1"), "svc.test", 80, []string{"127.0.0.1"}, ""},
		{"list name: another name", list(noLookup(t), "svc.test"), "other.test", 80, nil, "other.test:80 is not listed"},
		{"list name: a public address by itself", list(noLookup(t), "svc.test"), "8.8.4.4", 80, nil, "not listed"},
		{"list network: covered", list(noLookup(t), "192.168.1.0/24"), "192.168.1.77", 80, []string{"192.168.1.77"}, ""},
		{"list network: not covered", list(noLookup(t), "192.168.1.0/24"), "192.168.2.1", 80, nil, "private"},
		{"list v6 network: covered", list(noLookup(t), "fe80::/10"), "fe80::1", 80, []string{"fe80::1"}, ""},
		{"list name:port: that port", list(resolvesTo("api.test", "8.8.8.8"), "api.test:443"), "api.test", 443, []string{"8.8.8.8"}, ""},
		{"list name:port: another port", list(noLookup(t), "api.test:443"), "api.test", 80, nil, "api.test:80 is not listed"},
		{"list address:port: that port", list(noLookup(t), "10.0.0.5:8080"), "10.0.0.5", 8080, []string{"10.0.0.5"}, ""},
		{"list address:port: another port", list(noLookup(t), "10.0.0.5:8080"), "10.0.0.5", 22, nil, "private"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []netip.Addr
			var err error
			if tc.policy == nil {
				err = tc.policy.check(tc.host, tc.port)
			} else {
				got, err = tc.policy.targets(context.Background(), tc.host, tc.port)
			}
			if tc.want == nil {
				var denied *OutboundDeniedError
				if !errors.As(err, &denied) {
					t.Fatalf("dials %v (err %v), want a refusal", got, err)
				}
				if !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("refusal %q does not say %q", err, tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			var gotText []string
			for _, a := range got {
				gotText = append(gotText, a.String())
			}
			if strings.Join(gotText, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("dials %v, want %v", gotText, tc.want)
			}
		})
	}
}

func TestOutgoingHandlerRefusesUnlessAllowed(t *testing.T) {
	srv, hits := echoServer(t)
	authority := strings.TrimPrefix(srv.URL, "http://")

	if got := send(t, &Config{}, guestRequest(t, authority)); !got.deniedAtHandle {
		t.Fatalf("no policy: %+v, want HTTP-request-denied", got)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the server was reached %d times while outbound HTTP is refused", n)
	}

	allowed := &Config{Outbound: &OutboundPolicy{Allow: rules("127.0.0.1"), Lookup: noLookup(t)}}
	got := send(t, allowed, guestRequest(t, authority))
	if got.status != 200 || got.header != "yes" || got.body != "POST /echo ping" {
		t.Fatalf("allowed: %+v, want the server's echo", got)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d hits, want 1", n)
	}
}

// TestOutboundTrueIsThePublicInternetOnly: `allowOutboundHttp: true` no
// longer reaches this machine's loopback; listing the address does.
func TestOutboundTrueIsThePublicInternetOnly(t *testing.T) {
	srv, hits := echoServer(t)
	authority := strings.TrimPrefix(srv.URL, "http://")

	var log bytes.Buffer
	internet := &Config{Stderr: &log, Outbound: &OutboundPolicy{Internet: true, Setting: "spec.allowOutboundHttp", Lookup: noLookup(t)}}
	if got := send(t, internet, guestRequest(t, authority)); !got.deniedAtHandle {
		t.Fatalf("true, to %s: %+v, want HTTP-request-denied", authority, got)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback server was reached %d times with allowOutboundHttp: true", n)
	}
	want := "component: outbound HTTP to " + authority + " refused: 127.0.0.1 is a loopback address; spec.allowOutboundHttp reaches such an address only when it lists it (e.g. \"127.0.0.1\")\n"
	if log.String() != want {
		t.Fatalf("service log %q, want %q", log.String(), want)
	}

	listed := &Config{Stderr: &log, Outbound: &OutboundPolicy{Allow: rules("127.0.0.1"), Setting: "spec.allowOutboundHttp", Lookup: noLookup(t)}}
	if got := send(t, listed, guestRequest(t, authority)); got.status != 200 || got.body != "POST /echo ping" {
		t.Fatalf("127.0.0.1 listed: %+v, want the server's echo", got)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d hits, want 1", n)
	}
}

// TestOutboundChecksTheAddressDialled: a name the policy allows is checked
// again on the address it resolves to, when the connection is made, and the
// connection goes to that checked address (the names here are known only
// to the injected lookup, so a connection made by name would fail).
func TestOutboundChecksTheAddressDialled(t *testing.T) {
	srv, hits := echoServer(t)
	port := serverPort(t, srv)

	var log bytes.Buffer
	internet := &Config{Stderr: &log, Outbound: &OutboundPolicy{Internet: true, Setting: "spec.allowOutboundHttp",
		Lookup: resolvesTo("rebind.test", "127.0.0.1")}}
	got := send(t, internet, guestRequest(t, "rebind.test:"+port))
	if !got.deniedAtGet {
		t.Fatalf("true, a name resolving to 127.0.0.1: %+v, want HTTP-request-denied", got)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback server was reached %d times through a name", n)
	}
	want := "component: outbound HTTP to rebind.test:" + port + " refused: rebind.test resolves to 127.0.0.1, a loopback address; spec.allowOutboundHttp reaches such an address only when it lists it (e.g. \"127.0.0.1\")\n"
	if log.String() != want {
		t.Fatalf("service log %q, want %q", log.String(), want)
	}

	log.Reset()
	nameOnly := &Config{Stderr: &log, Outbound: &OutboundPolicy{Allow: rules("svc.test"), Setting: "spec.allowOutboundHttp",
		Lookup: resolvesTo("svc.test", "127.0.0.1")}}
	if got := send(t, nameOnly, guestRequest(t, "svc.test:"+port)); !got.deniedAtGet {
		t.Fatalf("a listed name resolving to 127.0.0.1: %+v, want HTTP-request-denied", got)
	}
	if !strings.Contains(log.String(), "svc.test resolves to 127.0.0.1") {
		t.Fatalf("service log %q", log.String())
	}

	both := &Config{Outbound: &OutboundPolicy{Allow: rules("svc.test", "127.0.0.1"), Lookup: resolvesTo("svc.test", "127.0.0.1")}}
	if got := send(t, both, guestRequest(t, "svc.test:"+port)); got.status != 200 || got.body != "POST /echo ping" {
		t.Fatalf("the name and 127.0.0.1 listed: %+v, want the server's echo", got)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d hits, want 1", n)
	}
}

// TestOutboundRedirectGoesToTheGuest: the host does not follow a redirect
// (wasi:http hands it to the guest, which may follow it through the policy).
func TestOutboundRedirectGoesToTheGuest(t *testing.T) {
	target, targetHits := echoServer(t)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/elsewhere", http.StatusFound)
	}))
	defer redirect.Close()
	cfg := &Config{Outbound: &OutboundPolicy{Allow: rules("127.0.0.1"), Lookup: noLookup(t)}}
	got := send(t, cfg, guestRequest(t, strings.TrimPrefix(redirect.URL, "http://")))
	if got.status != http.StatusFound {
		t.Fatalf("%+v, want the 302 itself", got)
	}
	if n := targetHits.Load(); n != 0 {
		t.Fatalf("the host followed the redirect (%d hits on its target)", n)
	}
}
