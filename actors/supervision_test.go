package actors

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
)

// portsProvider is a fakeProvider that keeps the ports of every start, so a
// test can tell the service came back on the ports it had.
type portsProvider struct {
	*fakeProvider
	mu    sync.Mutex
	ports [][]runtimes.PortBinding
}

func (p *portsProvider) Start(ctx context.Context, spec runtimes.InstanceSpec) (runtimes.Instance, error) {
	p.mu.Lock()
	p.ports = append(p.ports, slices.Clone(spec.Ports))
	p.mu.Unlock()
	return p.fakeProvider.Start(ctx, spec)
}

func (p *portsProvider) startPorts() [][]runtimes.PortBinding {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ports)
}

// panicExit is how an instance ends when the test wants the service actor to
// panic: the actor asks an exit error for its code in its own Receive, and
// this one panics there, as a bug in the actor would.
type panicExit struct{}

func (panicExit) Error() string { return "the instance ended" }
func (panicExit) ExitCode() int { panic("a bug in the service actor") }

// A service actor that panics is restarted by the registry's supervision and
// comes back from its record: running again, on the same host ports, still
// reachable through the same access target. The restart policy is never, so
// only the supervisor can have started it again.
func TestServiceActorPanicComesBackOnItsPorts(t *testing.T) {
	p := &portsProvider{fakeProvider: &fakeProvider{}}
	n := newTestNode(t, &home.Home{Dir: t.TempDir()}, p)
	pullTestService(t, n, "svc", "never", "  expose: {enabled: true, serviceId: web}\n")
	info, err := n.StartService(&messages.StartService{Name: "svc"}, answerWithin)
	if err != nil {
		t.Fatal(err)
	}
	ports := info.Ports
	if len(ports) != 1 || ports[0].HostPort == 0 {
		t.Fatalf("the service runs without a host port: %v", ports)
	}
	target, err := n.ResolveAccess(&ResolveAccess{ServiceID: "web"}, answerWithin)
	if err != nil {
		t.Fatal(err)
	}

	p.end("svc", panicExit{})

	testutil.WaitFor(t, 10*time.Second, "the service back on its ports", func() error {
		if n := p.startCount("svc"); n != 2 {
			return fmt.Errorf("%d starts", n)
		}
		info, err := n.InspectService(&messages.InspectService{Name: "svc"}, answerWithin)
		if err != nil {
			return err
		}
		if info.State != stateRunning {
			return fmt.Errorf("state %s", info.State)
		}
		if len(info.Ports) != 1 || info.Ports[0].HostPort != ports[0].HostPort {
			return fmt.Errorf("ports %v, want host port %d", info.Ports, ports[0].HostPort)
		}
		got, err := n.ResolveAccess(&ResolveAccess{ServiceID: "web"}, answerWithin)
		if err != nil {
			return err
		}
		if *got != *target {
			return fmt.Errorf("access target %+v, want %+v", got, target)
		}
		return nil
	})
	if starts := p.startPorts(); !slices.Equal(starts[0], starts[1]) {
		t.Fatalf("the runtime was given other ports after the restart: %v, then %v", starts[0], starts[1])
	}
}
