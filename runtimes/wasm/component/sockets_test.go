package component

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/wasmasm"
)

func compileBytes(tb testing.TB, b []byte) *Component {
	tb.Helper()
	c, err := Compile(context.Background(), runtime(tb), b)
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	tb.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// freeAddr is a loopback address no one listens on.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// dialUntil connects to addr, trying again until deadline: the guest
// listens once it has run its first steps.
func dialUntil(tb testing.TB, addr string, deadline time.Time, done <-chan error) net.Conn {
	tb.Helper()
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return conn
		}
		select {
		case err := <-done:
			tb.Fatalf("the guest ended before it listened: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("nothing listened on %s before the deadline: %v", addr, err)
		}
	}
}

func TestTCPEchoComponentListensOnItsMappedPortAndEchoes(t *testing.T) {
	c := compileBytes(t, wasmasm.TCPEcho(7007))
	if c.Kind() != KindCommand {
		t.Fatalf("Kind() = %v, want a command", c.Kind())
	}
	host := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		code, err := c.Run(ctx, Config{Stderr: &stderr, Sockets: &SocketPolicy{TCP: map[uint16]string{7007: host}}})
		if err == nil {
			err = errors.New("exited with code " + string(rune('0'+code)))
		}
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for i, msg := range []string{"hello over wasi:sockets\n", strings.Repeat("x", 100<<10)} {
		conn := dialUntil(t, host, deadline, done)
		_ = conn.SetDeadline(deadline)
		go func() { _, _ = conn.Write([]byte(msg)) }()
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil {
			t.Fatalf("connection %d: read the echo: %v (stderr %s)", i, err, stderr.String())
		}
		if string(got) != msg {
			t.Fatalf("connection %d: echo differs from what was sent", i)
		}
		conn.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the server returned on its own")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the guest did not stop when its context ended")
	}
	// The listener went with the instance.
	if conn, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		conn.Close()
		t.Fatal("the guest's listener outlived it")
	}
}

func TestSocketsAreDeniedWithoutAPolicy(t *testing.T) {
	c := compileBytes(t, wasmasm.TCPEcho(7007))
	for _, tc := range []struct {
		name   string
		policy *SocketPolicy
	}{
		{"no policy", nil},
		{"another port", &SocketPolicy{TCP: map[uint16]string{8080: freeAddr(t)}}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		code, err := c.Run(ctx, Config{Sockets: tc.policy})
		cancel()
		// 1: a step answered an error (the bind: access-denied).
		if err != nil || code != 1 {
			t.Fatalf("%s: exit %d, %v; want 1 (bind refused)", tc.name, code, err)
		}
	}
}

func TestConnectAndLookupFollowTheAllowList(t *testing.T) {
	inst := &instance{wake: make(chan struct{}, 1)}
	inst.wasi = &wasiState{cfg: &Config{Sockets: &SocketPolicy{
		Connect: []string{"127.0.0.1:5432", "db.home.arpa:5432"},
		Lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.9")}, nil
		},
	}}}
	c := &cx{ctx: context.Background(), inst: inst}
	allowed := func(s string) bool { return connectAllowed(c, netip.MustParseAddrPort(s)) }
	if !allowed("127.0.0.1:5432") || allowed("127.0.0.1:5433") || allowed("127.0.0.2:5432") {
		t.Fatal("an address entry allows exactly its address and port")
	}
	if allowed("127.0.0.9:5432") {
		t.Fatal("a name's address is allowed before the guest looked the name up")
	}
	ec := &vtype{kind: kEnum, labels: []string{"unknown", "access-denied", "would-block"}}
	c.ft = &funcType{results: []*vtype{{kind: kResult, cases: []*vtype{nil, ec}}}}
	if v := lookupFuncs["resolve-addresses"].fn(c, []any{&network{}, "other.example"})[0].(Variant); v.Case != 1 {
		t.Fatal("a name not on the list was looked up")
	}
	r := lookupFuncs["resolve-addresses"].fn(c, []any{&network{}, "db.home.arpa"})[0].(Variant).Val.(*resolveStream)
	(&pollable{src: r}).block(c)
	c.ft = &funcType{results: []*vtype{{kind: kResult, cases: []*vtype{{kind: kOption}, ec}}}}
	next := lookupFuncs["[method]resolve-address-stream.resolve-next-address"].fn
	if v := next(c, []any{r})[0].(Variant); v.Case != 0 || v.Val.(Variant).Case != 1 {
		t.Fatalf("resolve-next-address = %#v, want some(address)", v)
	}
	if !allowed("127.0.0.9:5432") || allowed("127.0.0.9:80") {
		t.Fatal("a looked-up name's address is allowed at the name's port only")
	}
}

func TestDroppingAStreamWhileItsPollableLivesTraps(t *testing.T) {
	ok := compileBytes(t, wasmasm.StreamChild(false))
	if code, err := ok.Run(context.Background(), Config{}); err != nil || code != 0 {
		t.Fatalf("pollable dropped first: exit %d, %v; want 0", code, err)
	}
	bad := compileBytes(t, wasmasm.StreamChild(true))
	code, err := bad.Run(context.Background(), Config{})
	if err == nil || !strings.Contains(err.Error(), "live child") {
		t.Fatalf("stream dropped while its pollable lives: exit %d, %v; want a trap naming the live child", code, err)
	}
}

func TestAnHTTPComponentImportingUnusedSocketsLinksAndServes(t *testing.T) {
	c := compileBytes(t, wasmasm.HTTPWithUnusedSockets())
	if c.Kind() != KindHTTP {
		t.Fatalf("Kind() = %v, want an HTTP handler", c.Kind())
	}
	for _, want := range []string{"wasi:sockets/tcp@0.2.0", "wasi:sockets/ip-name-lookup@0.2.0", "wasi:sockets/udp-create-socket@0.2.0"} {
		if !slices.Contains(c.Imports(), want) {
			t.Fatalf("imports %v lack %s", c.Imports(), want)
		}
	}
	rec := httptest.NewRecorder()
	c.Handler(Config{}).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d, want 200 (%s)", rec.Code, rec.Body.String())
	}
}
