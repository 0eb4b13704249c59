package actors

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
)

// heldStopProvider is a fakeProvider whose instances stop only once the
// test lets them (release), so a stop can be caught under way.
type heldStopProvider struct {
	*fakeProvider
	release chan struct{}
}

func (p *heldStopProvider) Start(ctx context.Context, spec runtimes.InstanceSpec) (runtimes.Instance, error) {
	inst, err := p.fakeProvider.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &heldStopInstance{fakeInstance: inst.(*fakeInstance), release: p.release}, nil
}

type heldStopInstance struct {
	*fakeInstance
	release chan struct{}
}

func (i *heldStopInstance) Stop(ctx context.Context) error {
	<-i.release
	return i.fakeInstance.Stop(ctx)
}

// wantRefused asks for an access stream to web and wants it refused with
// kind.
func wantRefused(t *testing.T, n *Node, when string, kind ErrorKind) {
	t.Helper()
	got, err := n.ResolveAccess(&ResolveAccess{ServiceID: "web"}, answerWithin)
	var ae *Error
	if !errors.As(err, &ae) || ae.Kind != kind {
		t.Fatalf("%s: access answered %+v, %v; want a refusal (%v)", when, got, err, kind)
	}
}

// Admission reads the registry's snapshot, not its mailbox; the snapshot
// must agree with every answer the registry gave: a stream is refused
// while a stop is under way, the moment the stop has answered, and once a
// remove has; it is admitted the moment a start has answered. Stop and
// start go round a few times, each checked right after its answer.
func TestAccessAdmissionFollowsStopStartRemove(t *testing.T) {
	p := &heldStopProvider{fakeProvider: &fakeProvider{}, release: make(chan struct{})}
	n := newTestNode(t, &home.Home{Dir: t.TempDir()}, p)
	pullTestService(t, n, "svc", "never", "  expose: {enabled: true, serviceId: web}\n")
	wantRefused(t, n, "pulled, never started", Conflict)

	for round := range 5 {
		if _, err := n.StartService(&messages.StartService{Name: "svc"}, answerWithin); err != nil {
			t.Fatal(err)
		}
		if _, err := n.ResolveAccess(&ResolveAccess{ServiceID: "web"}, answerWithin); err != nil {
			t.Fatalf("round %d: start answered, yet access is refused: %v", round, err)
		}
		stopped := make(chan error, 1)
		go func() {
			_, err := n.StopService(&messages.StopService{Name: "svc"}, answerWithin)
			stopped <- err
		}()
		if round == 0 {
			// The first stop is held in the instance: the service is
			// stopping, and refused already.
			testutil.WaitFor(t, answerWithin, "the service stopping", func() error {
				info, err := n.InspectService(&messages.InspectService{Name: "svc"}, answerWithin)
				if err == nil && info.State != stateStopping {
					err = fmt.Errorf("state %s", info.State)
				}
				return err
			})
			wantRefused(t, n, "stop under way", Conflict)
			close(p.release)
		}
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		wantRefused(t, n, "stop answered", Conflict)
	}

	if _, err := n.StartService(&messages.StartService{Name: "svc"}, answerWithin); err != nil {
		t.Fatal(err)
	}
	if _, err := n.RemoveService(&messages.RemoveService{Name: "svc"}, answerWithin); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, n, "removed", NotFound)
}
