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

// fakeProvider is a runtime whose instances the test ends at will, and
// whose engine the test takes down and brings up per service, to drive the
// service actor's restart policy. The real providers are exercised by their
// own tests and the end-to-end scripts.
type fakeProvider struct {
	runtime string // "wasmtime" unless set
	mu      sync.Mutex
	starts  map[string]int
	live    map[string][]*fakeInstance
	down    map[string]error
}

func (p *fakeProvider) Runtime() string {
	if p.runtime != "" {
		return p.runtime
	}
	return "wasmtime"
}
func (p *fakeProvider) Capability(context.Context) *messages.RuntimeCapability {
	return &messages.RuntimeCapability{Name: p.Runtime(), Available: true}
}
func (p *fakeProvider) Fetch(context.Context, runtimes.FetchRequest, func(*messages.PullProgress)) (runtimes.Artifact, error) {
	return runtimes.Artifact{Ref: "fake", SHA256: "00"}, nil
}
func (p *fakeProvider) Remove(context.Context, string) error { return nil }
func (p *fakeProvider) Start(_ context.Context, spec runtimes.InstanceSpec) (runtimes.Instance, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.starts == nil {
		p.starts, p.live = map[string]int{}, map[string][]*fakeInstance{}
	}
	p.starts[spec.Name]++
	if err := p.down[spec.Name]; err != nil {
		return nil, err
	}
	inst := &fakeInstance{done: make(chan struct{})}
	p.live[spec.Name] = append(p.live[spec.Name], inst)
	return inst, nil
}

// crash ends the newest instance of a service as if it exited with an error.
func (p *fakeProvider) crash(name string) {
	p.mu.Lock()
	inst := p.live[name][len(p.live[name])-1]
	p.mu.Unlock()
	inst.end(errors.New("exit code 3"))
}

// end ends the newest instance of a service with err.
func (p *fakeProvider) end(name string, err error) {
	p.mu.Lock()
	inst := p.live[name][len(p.live[name])-1]
	p.mu.Unlock()
	inst.end(err)
}

// setDown makes every start of the service fail with err (nil: succeed).
func (p *fakeProvider) setDown(name string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down == nil {
		p.down = map[string]error{}
	}
	p.down[name] = err
}

func (p *fakeProvider) startCount(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts[name]
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

// fakeManifest takes the name, the restart policy and further spec lines.
const fakeManifest = `apiVersion: fungi.dev/v1alpha1
kind: ServiceManifest
metadata: {name: %s}
spec:
  runtime: wasmtime
  source: {file: x.wasm}
  ports: [{name: http}]
  restart: %s
%s`

// shortBackoff makes restarts come after milliseconds for the test. It is
// called before the node starts, so the node is stopped before it is put back.
func shortBackoff(t *testing.T, first, max time.Duration) {
	saved := restartBackoff
	restartBackoff.first, restartBackoff.max = first, max
	t.Cleanup(func() { restartBackoff = saved })
}

// cancelBackoff is the backoff of the tests that stop a pending restart: long
// enough for the stop to come before it, short enough for a witness service
// to be restarted several times over within a second or two.
const cancelBackoff = 150 * time.Millisecond

func newTestNode(t *testing.T, h *home.Home, p runtimes.Provider) *Node {
	n, err := StartNode(NodeConfig{Home: h, Providers: []runtimes.Provider{p}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

func pullTestService(t *testing.T, n *Node, name, policy, extra string) {
	t.Helper()
	_, err := n.PullService(&messages.PullServiceRequest{ManifestYaml: []byte(fmt.Sprintf(fakeManifest, name, policy, extra))}, func(*messages.PullProgress) {}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
}

func startTestNode(t *testing.T, policy string) (*Node, *fakeProvider) {
	p := &fakeProvider{}
	n := newTestNode(t, &home.Home{Dir: t.TempDir()}, p)
	pullTestService(t, n, "svc", policy, "")
	if _, err := n.StartService(&messages.StartService{Name: "svc"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	return n, p
}

func inspect(t *testing.T, n *Node) *messages.ServiceInfo {
	return inspectService(t, n, "svc")
}

func inspectService(t *testing.T, n *Node, name string) *messages.ServiceInfo {
	t.Helper()
	res, err := n.InspectService(&messages.InspectService{Name: name}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestOnFailureRestartsAndCounts(t *testing.T) {
	n, p := startTestNode(t, "on-failure")
	p.crash("svc")
	testutil.WaitFor(t, 10*time.Second, "the restart", func() error {
		info := inspect(t, n)
		if p.startCount("svc") != 2 || info.State != stateRunning {
			return fmt.Errorf("starts %d, state %s", p.startCount("svc"), info.State)
		}
		if info.Restarts != 1 {
			return fmt.Errorf("restarts %d", info.Restarts)
		}
		return nil
	})
}

func TestNeverStaysFailedWithReason(t *testing.T) {
	n, p := startTestNode(t, "never")
	p.crash("svc")
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
	if p.startCount("svc") != 1 || inspect(t, n).Restarts != 0 {
		t.Fatalf("restart policy never restarted it: starts %d", p.startCount("svc"))
	}
}

// TestStopCancelsPendingRestart stops a crashed service while its restart
// is pending and waits until the restart would have come and gone: a second
// service, crashed after the stop with the same backoff, is tried three
// times over meanwhile.
func TestStopCancelsPendingRestart(t *testing.T) {
	shortBackoff(t, cancelBackoff, cancelBackoff)
	p := &fakeProvider{}
	n := newTestNode(t, &home.Home{Dir: t.TempDir()}, p)
	for _, name := range []string{"svc", "witness"} {
		pullTestService(t, n, name, "always", "")
		if _, err := n.StartService(&messages.StartService{Name: name}, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	p.crash("svc")
	testutil.WaitFor(t, 5*time.Second, "the crash to be seen", func() error {
		if info := inspect(t, n); info.Restarts != 1 {
			return fmt.Errorf("state %s, restarts %d", info.State, info.Restarts)
		}
		return nil
	})
	if _, err := n.StopService(&messages.StopService{Name: "svc"}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if info := inspect(t, n); info.DesiredState != desiredStopped || info.State != stateStopped {
		t.Fatalf("after stop: state %s desired %s", info.State, info.DesiredState)
	}
	startsAtStop := p.startCount("svc")
	p.setDown("witness", errors.New("engine down"))
	p.crash("witness")
	testutil.WaitFor(t, 10*time.Second, "the witness to be tried three times", func() error {
		if got := p.startCount("witness"); got < 4 {
			return fmt.Errorf("%d starts", got)
		}
		return nil
	})
	if info := inspect(t, n); info.State != stateStopped || p.startCount("svc") != startsAtStop {
		t.Fatalf("a stopped service restarted: state %s, %d starts, %d at the stop", info.State, p.startCount("svc"), startsAtStop)
	}
}

func TestDesiredStateSurvivesRestartOfTheNode(t *testing.T) {
	h := &home.Home{Dir: t.TempDir()}
	p := &fakeProvider{}
	n, err := StartNode(NodeConfig{Home: h, Providers: []runtimes.Provider{p}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.PullService(&messages.PullServiceRequest{ManifestYaml: []byte(fmt.Sprintf(fakeManifest, "svc", "never", ""))}, func(*messages.PullProgress) {}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	res, err := n.StartService(&messages.StartService{Name: "svc"}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	port := res.Ports[0].HostPort
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
	_, err := n.StartService(&messages.StartService{Name: "nope"}, 5*time.Second)
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
