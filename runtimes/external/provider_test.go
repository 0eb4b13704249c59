package external

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

func spec(host string, port int) runtimes.InstanceSpec {
	m := &manifest.Manifest{}
	m.Metadata.Name = "target"
	m.Spec.Runtime = manifest.RuntimeExternal
	m.Spec.Source.Host = host
	return runtimes.InstanceSpec{
		Name:     "target",
		Manifest: m,
		Ports:    []runtimes.PortBinding{{Name: "tcp", ServicePort: port, HostPort: port}},
		Log:      &testutil.SyncBuffer{},
	}
}

func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Accept(ln, func(c net.Conn) { c.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

func TestStartNeedsAnAnsweringTarget(t *testing.T) {
	ln, port := listen(t)
	ln.Close()
	p := New(Config{})
	_, err := p.Start(context.Background(), spec("", port))
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("start of a target nobody listens on: %v, want a refusal that says connection refused", err)
	}
}

func TestWatchEndsWhenTheTargetStops(t *testing.T) {
	ln, port := listen(t)
	p := New(Config{ProbeInterval: 20 * time.Millisecond})
	s := spec("127.0.0.1", port)
	inst, err := p.Start(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-inst.Done():
		t.Fatalf("the watch ended while the target answered: %v", inst.Err())
	default:
	}
	ln.Close()
	select {
	case <-inst.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the watch did not notice the target stopped")
	}
	if err := inst.Err(); err == nil || !strings.Contains(err.Error(), "stopped answering") {
		t.Fatalf("Err() = %v, want the reason the target is down", err)
	}
	if !strings.Contains(s.Log.(*testutil.SyncBuffer).String(), "stopped answering") {
		t.Fatalf("the service log does not say the target went down: %q", s.Log.(*testutil.SyncBuffer).String())
	}
}

func TestStopIsCleanAndLeavesTheTargetRunning(t *testing.T) {
	ln, port := listen(t)
	defer ln.Close()
	p := New(Config{ProbeInterval: time.Hour})
	inst, err := p.Start(context.Background(), spec("", port))
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-inst.Done()
	if inst.Err() != nil {
		t.Fatalf("a stopped watch reports %v", inst.Err())
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("the target was disturbed by the stop: %v", err)
	}
	c.Close()
}

func TestOtherHostsNeedTheConfigAllowance(t *testing.T) {
	ctx := context.Background()
	refused := New(Config{})
	for _, host := range []string{"192.168.1.30", "10.0.0.7", "fd00::1"} {
		err := refused.Allowed(ctx, host)
		if err == nil || !strings.Contains(err.Error(), AllowedHostsKey) {
			t.Errorf("Allowed(%s) without config = %v, want a refusal naming %s", host, err, AllowedHostsKey)
		}
	}
	for _, host := range []string{"127.0.0.1", "127.0.0.53", "::1", "localhost"} {
		if err := refused.Allowed(ctx, host); err != nil {
			t.Errorf("Allowed(%s) = %v, loopback is always allowed", host, err)
		}
	}
	allowed := New(Config{AllowedHosts: []string{"192.168.1.0/24", "10.0.0.7", "nas.lan"}, LookupNetIP: fixedLookup(map[string]string{"nas.lan": "192.168.7.9"})})
	for _, host := range []string{"192.168.1.30", "10.0.0.7", "nas.lan"} {
		if err := allowed.Allowed(ctx, host); err != nil {
			t.Errorf("Allowed(%s) with it in config = %v", host, err)
		}
	}
	if err := allowed.Allowed(ctx, "192.168.2.1"); err == nil {
		t.Error("an address outside the allowed network was allowed")
	}
}

func TestFetchRefusesADisallowedTargetAtPull(t *testing.T) {
	p := New(Config{})
	m := spec("192.168.1.30", 80).Manifest
	_, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: m}, func(*messages.PullProgress) {})
	if err == nil || !strings.Contains(err.Error(), AllowedHostsKey) {
		t.Fatalf("pull of a LAN target without the allowance: %v", err)
	}
}

// fixedLookup resolves names from a table, never through the machine's
// resolver; the table can be changed between calls (a name re-pointed).
func fixedLookup(names map[string]string) func(context.Context, string) ([]netip.Addr, error) {
	var mu sync.Mutex
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		a, ok := names[host]
		if !ok {
			return nil, fmt.Errorf("no such host %s", host)
		}
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
}

// An access stream connects to the address the allowance is checked on at
// that moment: the published host, never this machine's loopback port of
// the same number, and never where a name was re-pointed since the pull.
func TestDialAddressIsThePublishedHostCheckedNow(t *testing.T) {
	ctx := context.Background()
	names := map[string]string{"nas.lan": "10.231.0.2", "printer.lan": "10.231.0.3"}
	lookup := fixedLookup(names)
	var mu sync.Mutex
	repoint := func(name, addr string) {
		mu.Lock()
		defer mu.Unlock()
		names[name] = addr
	}
	p := New(Config{AllowedHosts: []string{"10.231.0.0/24", "nas.lan"}, LookupNetIP: func(ctx context.Context, h string) ([]netip.Addr, error) {
		mu.Lock()
		defer mu.Unlock()
		return lookup(ctx, h)
	}})
	for _, c := range []struct{ host, want string }{
		{"10.231.0.2", "10.231.0.2:18080"},
		{"nas.lan", "10.231.0.2:18080"},
		{"printer.lan", "10.231.0.3:18080"}, // not listed by name: its address is checked
		{"127.0.0.2", "127.0.0.2:18080"},
		{"localhost", "127.0.0.1:18080"},
	} {
		got, err := p.DialAddress(ctx, c.host, 18080)
		if err != nil || got != c.want {
			t.Errorf("DialAddress(%s) = %q, %v; want %s", c.host, got, err, c.want)
		}
	}
	// Re-pointed after the pull: a name not listed by name to a host the
	// owner never allowed, a listed name to the cloud's metadata service.
	repoint("printer.lan", "192.168.1.1")
	if got, err := p.DialAddress(ctx, "printer.lan", 80); err == nil || !strings.Contains(err.Error(), AllowedHostsKey) {
		t.Errorf("a name re-pointed outside the allowance dials %q, %v", got, err)
	}
	repoint("nas.lan", "169.254.169.254")
	if got, err := p.DialAddress(ctx, "nas.lan", 80); err == nil || !strings.Contains(err.Error(), "link-local") {
		t.Errorf("a listed name re-pointed to a link-local address dials %q, %v", got, err)
	}
	// The allowance withdrawn since the pull.
	p.SetAllowedHosts(nil)
	if got, err := p.DialAddress(ctx, "10.231.0.2", 80); err == nil {
		t.Errorf("a host no longer allowed dials %q", got)
	}
}
