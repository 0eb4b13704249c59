package actors

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
)

// fakeProvider is a runtime whose instances the test ends at will, to drive
// the service actor's restart policy. The real providers are exercised by
// their own tests and the end-to-end scripts.
type fakeProvider struct {
	mu     sync.Mutex
	starts int
	live   []*fakeInstance
}

func (p *fakeProvider) Runtime() string { return "wasmtime" }
func (p *fakeProvider) Capability(context.Context) *messages.RuntimeCapability {
	return &messages.RuntimeCapability{Name: "wasmtime", Available: true}
}
func (p *fakeProvider) Fetch(context.Context, runtimes.FetchRequest, func(*messages.PullProgress)) (runtimes.Artifact, error) {
	return runtimes.Artifact{Ref: "fake", SHA256: "00"}, nil
}
func (p *fakeProvider) Remove(context.Context, string) error { return nil }
func (p *fakeProvider) Start(context.Context, runtimes.InstanceSpec) (runtimes.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts++
	inst := &fakeInstance{done: make(chan struct{})}
	p.live = append(p.live, inst)
	return inst, nil
}

// crash ends the newest instance as if it exited with an error.
func (p *fakeProvider) crash() {
	p.mu.Lock()
	inst := p.live[len(p.live)-1]
	p.mu.Unlock()
	inst.end(errors.New("exit code 3"))
}

func (p *fakeProvider) startCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

type fakeInstance struct {
	once sync.Once
	done chan struct{}
	err  error
}

func (i *fakeInstance) end(err error) {
	i.once.Do(func() { i.err = err; close(i.done) })
}
func (i *fakeInstance) Stop(context.Context) error { i.end(nil); return nil }
func (i *fakeInstance) Done() <-chan struct{}      { return i.done }
func (i *fakeInstance) Err() error                 { return i.err }

const fakeManifest = `apiVersion: fungi.dev/v1alpha1
kind: ServiceManifest
metadata: {name: svc}
spec:
  runtime: wasmtime
  source: {file: x.wasm}
  ports: [{name: http}]
  restart: %s
`

func startTestNode(t *testing.T, policy string) (*Node, *fakeProvider) {
	h := &home.Home{Dir: t.TempDir()}
	p := &fakeProvider{}
	n, err := StartNode(NodeConfig{Home: h, Providers: []runtimes.Provider{p}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	_, err = n.PullService(&messages.PullServiceRequest{ManifestYaml: []byte(fmt.Sprintf(fakeManifest, policy))}, func(*messages.PullProgress) {}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Ask(&messages.StartService{Name: "svc"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return n, p
}

func inspect(t *testing.T, n *Node) *messages.ServiceInfo {
	res, err := n.Ask(&messages.InspectService{Name: "svc"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return res.(*messages.ServiceInfo)
}

func TestOnFailureRestartsAndCounts(t *testing.T) {
	n, p := startTestNode(t, "on-failure")
	p.crash()
	testutil.WaitFor(t, 10*time.Second, "the restart", func() error {
		info := inspect(t, n)
		if p.startCount() != 2 || info.State != stateRunning {
			return fmt.Errorf("starts %d, state %s", p.startCount(), info.State)
		}
		if info.Restarts != 1 {
			return fmt.Errorf("restarts %d", info.Restarts)
		}
		return nil
	})
}

func TestNeverStaysFailedWithReason(t *testing.T) {
	n, p := startTestNode(t, "never")
	p.crash()
	testutil.WaitFor(t, 5*time.Second, "the failed state", func() error {
		info := inspect(t, n)
		if info.State != stateFailed {
			return fmt.Errorf("state %s", info.State)
		}
		if !strings.Contains(info.LastError, "exit code 3") {
			return fmt.Errorf("last error %q", info.LastError)
		}
		return nil
	})
	if p.startCount() != 1 || inspect(t, n).Restarts != 0 {
		t.Fatalf("restart policy never restarted it: starts %d", p.startCount())
	}
}

func TestStopCancelsPendingRestart(t *testing.T) {
	n, p := startTestNode(t, "always")
	p.crash()
	testutil.WaitFor(t, 5*time.Second, "the failure to be seen", func() error {
		if s := inspect(t, n).State; s != stateFailed && s != stateRunning {
			return fmt.Errorf("state %s", s)
		}
		return nil
	})
	if _, err := n.Ask(&messages.StopService{Name: "svc"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	info := inspect(t, n)
	if info.DesiredState != desiredStopped || info.State != stateStopped {
		t.Fatalf("after stop: state %s desired %s", info.State, info.DesiredState)
	}
	// The backoff timer fires into a newer generation and must do nothing.
	before := p.startCount()
	if inspect(t, n).State != stateStopped || p.startCount() != before {
		t.Fatalf("a stopped service restarted")
	}
}

func TestDesiredStateSurvivesRestartOfTheNode(t *testing.T) {
	h := &home.Home{Dir: t.TempDir()}
	p := &fakeProvider{}
	n, err := StartNode(NodeConfig{Home: h, Providers: []runtimes.Provider{p}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.PullService(&messages.PullServiceRequest{ManifestYaml: []byte(fmt.Sprintf(fakeManifest, "never"))}, func(*messages.PullProgress) {}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	res, err := n.Ask(&messages.StartService{Name: "svc"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	port := res.(*messages.ServiceInfo).Ports[0].HostPort
	n.Stop()
	if _, err := os.Stat(h.ServiceDir("svc")); err != nil {
		t.Fatal(err)
	}

	n2, err := StartNode(NodeConfig{Home: h, Providers: []runtimes.Provider{p}})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Stop()
	testutil.WaitFor(t, 5*time.Second, "the service back to running", func() error {
		info := inspect(t, n2)
		if info.State != stateRunning {
			return fmt.Errorf("state %s", info.State)
		}
		if info.Ports[0].HostPort != port {
			return fmt.Errorf("host port %d, was %d", info.Ports[0].HostPort, port)
		}
		return nil
	})
}

func TestUnknownServiceSaysWhatToDo(t *testing.T) {
	n, _ := startTestNode(t, "never")
	_, err := n.Ask(&messages.StartService{Name: "nope"}, 5*time.Second)
	var e *Error
	if !errors.As(err, &e) || e.Kind != NotFound || !strings.Contains(e.Msg, "fungi service list") {
		t.Fatalf("got %v", err)
	}
}

func TestServiceLogRotates(t *testing.T) {
	path := t.TempDir() + "/service.log"
	l := openServiceLog(path)
	l.max = 100
	for i := 0; i < 30; i++ {
		fmt.Fprintf(l, "line %02d\n", i) // 8 bytes each
	}
	l.Close()
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if len(cur) > 100 || len(old) > 100 || len(old) == 0 {
		t.Fatalf("sizes: current %d, previous %d; want both ≤ 100 and a previous file", len(cur), len(old))
	}
	if !strings.HasSuffix(string(cur), "line 29\n") {
		t.Fatalf("the newest line is not last in the current file: %q", cur)
	}
}
