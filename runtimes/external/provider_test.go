package external

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func spec(host string, port int) runtimes.InstanceSpec {
	m := &manifest.Manifest{}
	m.Metadata.Name = "target"
	m.Spec.Runtime = manifest.RuntimeExternal
	m.Spec.Source.Host = host
	return runtimes.InstanceSpec{
		Name:     "target",
		Manifest: m,
		Ports:    []runtimes.PortBinding{{Name: "tcp", ServicePort: port, HostPort: port}},
		Log:      &syncBuffer{},
	}
}

func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
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
	if !strings.Contains(s.Log.(*syncBuffer).String(), "stopped answering") {
		t.Fatalf("the service log does not say the target went down: %q", s.Log.(*syncBuffer).String())
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
	allowed := New(Config{AllowedHosts: []string{"192.168.1.0/24", "10.0.0.7", "nas.lan"}})
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
