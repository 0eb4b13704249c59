package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// heldProvider is a wasmtime runtime whose fetches the test holds: a fetch
// waits until release is closed (or the test ends), the way a provider that
// never reports back would.
type heldProvider struct {
	release chan struct{}
	mu      sync.Mutex
	fetches int
}

func (p *heldProvider) Runtime() string { return manifest.RuntimeWasmtime }
func (p *heldProvider) Capability(context.Context) *messages.RuntimeCapability {
	return &messages.RuntimeCapability{Name: manifest.RuntimeWasmtime, Available: true}
}
func (p *heldProvider) Fetch(ctx context.Context, _ runtimes.FetchRequest, _ func(*messages.PullProgress)) (runtimes.Artifact, error) {
	p.mu.Lock()
	p.fetches++
	p.mu.Unlock()
	select {
	case <-p.release:
		return runtimes.Artifact{Ref: "held", SHA256: "00"}, nil
	case <-ctx.Done():
		return runtimes.Artifact{}, ctx.Err()
	}
}
func (p *heldProvider) Start(context.Context, runtimes.InstanceSpec) (runtimes.Instance, error) {
	return nil, errors.New("heldProvider does not start services")
}
func (p *heldProvider) Remove(context.Context, string) error { return nil }

func (p *heldProvider) fetchCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetches
}

// registryUnderTest is a registry with a real runtime actor around p, in
// an actor system of its own; adjust changes the registry before it starts.
func registryUnderTest(t *testing.T, p runtimes.Provider, adjust func(*serviceRegistry)) (*actor.ActorSystem, *actor.PID) {
	t.Helper()
	h := &home.Home{Dir: t.TempDir()} // removed after the actors below stop
	system := actor.NewActorSystem()
	rt := system.Root.Spawn(runtimeProps(p))
	r := newServiceRegistry(h, map[string]*actor.PID{p.Runtime(): rt}, nil)
	if adjust != nil {
		adjust(r)
	}
	reg := system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return r }))
	t.Cleanup(func() {
		// The registry's service actors write to the home; they stop with it.
		_ = system.Root.StopFuture(reg).Wait()
		system.Shutdown()
	})
	return system, reg
}

// askRegistry sends msg and waits for the answer; an *Error answer is the error.
func askRegistry(system *actor.ActorSystem, pid *actor.PID, msg any, within time.Duration) (any, error) {
	res, err := system.Root.RequestFuture(pid, msg, within).Result()
	if err != nil {
		return nil, fmt.Errorf("no answer within %s: %w", within, err)
	}
	if e, ok := res.(*Error); ok {
		return nil, e
	}
	return res, nil
}

func pullRequest(yaml []byte) *pullService {
	return &pullService{req: &messages.PullServiceRequest{ManifestYaml: yaml}, progress: func(*messages.PullProgress) {}}
}

const registryManifest = `apiVersion: fungi.dev/v1alpha1
kind: ServiceManifest
metadata: {name: %s}
spec:
  runtime: wasmtime
  source: {file: x.wasm}
  ports: [{name: http}]
%s`

// registryAnswerWithin is how long a test waits for any answer of the registry. It
// is a deadline, not a measure: a registry that decodes in its mailbox
// misses it by minutes.
const registryAnswerWithin = 20 * time.Second

func TestRegistryListAnswersWhileAPulledManifestIsDecoded(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	system, reg := registryUnderTest(t, &heldProvider{release: make(chan struct{})}, func(r *serviceRegistry) {
		r.decode = func(data []byte, rules manifest.NodeRules) (*manifest.Manifest, error) {
			entered <- struct{}{}
			<-release // a decode that takes as long as the test wants
			return manifest.ParseForNode(data, rules)
		}
	})
	pulled := system.Root.RequestFuture(reg, pullRequest([]byte("apiVersion: [unclosed")), registryAnswerWithin)
	select {
	case <-entered:
	case <-time.After(registryAnswerWithin):
		t.Fatal("the pulled manifest was never decoded")
	}
	// The decode is in flight and held: list must still be answered.
	res, err := askRegistry(system, reg, &messages.ListServicesRequest{}, registryAnswerWithin)
	if err != nil {
		t.Fatalf("list while a manifest is decoded: %v", err)
	}
	if _, ok := res.(*messages.ServiceList); !ok {
		t.Fatalf("list answered %T", res)
	}
	close(release)
	res, err = pulled.Result()
	if err != nil {
		t.Fatalf("the pull was not answered once its decode finished: %v", err)
	}
	if e, ok := res.(*Error); !ok || e.Kind != Invalid || !strings.Contains(e.Msg, "not valid YAML") {
		t.Fatalf("pull answered %#v, want the YAML refused", res)
	}
}

func TestRegistryLimitsManifestsDecodedAtOnce(t *testing.T) {
	entered, release := make(chan struct{}, maxDecodesInFlight), make(chan struct{})
	system, reg := registryUnderTest(t, &heldProvider{release: make(chan struct{})}, func(r *serviceRegistry) {
		r.decode = func(data []byte, rules manifest.NodeRules) (*manifest.Manifest, error) {
			entered <- struct{}{}
			<-release
			return manifest.ParseForNode(data, rules)
		}
	})
	var held []*actor.Future
	for range maxDecodesInFlight {
		held = append(held, system.Root.RequestFuture(reg, pullRequest([]byte("{")), registryAnswerWithin))
		select {
		case <-entered:
		case <-time.After(registryAnswerWithin):
			t.Fatal("a pulled manifest was never decoded")
		}
	}
	_, err := askRegistry(system, reg, pullRequest([]byte("{")), registryAnswerWithin)
	var e *Error
	if !errors.As(err, &e) || e.Kind != Conflict || !strings.Contains(e.Msg, fmt.Sprintf("already checking %d pulled manifests", maxDecodesInFlight)) {
		t.Fatalf("pull past the limit: %v, want a refusal saying to try again", err)
	}
	close(release)
	for _, f := range held {
		if _, err := f.Result(); err != nil {
			t.Fatalf("a held pull was not answered: %v", err)
		}
	}
	// With the decodes done, a pull is taken again.
	if _, err := askRegistry(system, reg, pullRequest([]byte("{")), registryAnswerWithin); !errors.As(err, &e) || e.Kind != Invalid {
		t.Fatalf("pull after the others finished: %v, want it decoded (and refused as invalid)", err)
	}
}

func TestRegistryRefusesHostileManifestsAndKeepsAnswering(t *testing.T) {
	system, reg := registryUnderTest(t, &heldProvider{release: make(chan struct{})}, nil)
	head := "apiVersion: fungi.dev/v1alpha1\nkind: ServiceManifest\nmetadata: {name: hostile}\nspec:\n  runtime: wasmtime\n  source: {file: a.wasm}\n"
	var unknown, fanOut, huge strings.Builder
	unknown.WriteString(head)
	for i := range 40_000 {
		fmt.Fprintf(&unknown, "  u%06d: 1\n", i)
	}
	fanOut.WriteString(head + "  ports: [&p {")
	for i := range 1000 {
		fmt.Fprintf(&fanOut, "k%d: 1, ", i)
	}
	fanOut.WriteString("}" + strings.Repeat(", *p", 1999) + "]\n")
	huge.WriteString(head + "  env:\n")
	for i := range 1_150_000 {
		fmt.Fprintf(&huge, "    VARIABLE_%07d: value-of-the-variable\n", i)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"40k unknown keys", unknown.String(), "and 39980 more problems"},
		{"alias fan-out", fanOut.String(), "spec.ports: has 2000 ports; a manifest may have at most 64"},
		{"50 MB of env", huge.String(), "a manifest may be at most 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := askRegistry(system, reg, pullRequest([]byte(tc.yaml)), registryAnswerWithin)
			var e *Error
			if !errors.As(err, &e) || e.Kind != Invalid || !strings.Contains(e.Msg, tc.want) {
				t.Fatalf("pull of %d bytes: %v\nwant an Invalid refusal containing %q", len(tc.yaml), err, tc.want)
			}
			if _, err := askRegistry(system, reg, &messages.ListServicesRequest{}, registryAnswerWithin); err != nil {
				t.Fatalf("list after the refusal: %v", err)
			}
		})
	}
}

func TestRegistryRefusesAMountOutsideTheAllowedFoldersAtPull(t *testing.T) {
	p := &heldProvider{release: make(chan struct{})}
	close(p.release) // fetches succeed at once
	system, reg := registryUnderTest(t, p, func(r *serviceRegistry) { r.allowedMounts = []string{"/srv/media"} })
	yaml := fmt.Sprintf(registryManifest, "mounter", "  mounts:\n    - {hostPath: /srv/media/../../etc, runtimePath: /etc}\n")
	_, err := askRegistry(system, reg, pullRequest([]byte(yaml)), registryAnswerWithin)
	var e *Error
	want := `line 9, column 18: spec.mounts[0].hostPath: "/srv/media/../../etc" is outside the service's data folder and outside every folder this node allows (mounts.allowed: /srv/media)`
	if !errors.As(err, &e) || e.Kind != Invalid || !strings.Contains(e.Msg, want) {
		t.Fatalf("pull: %v\nwant an Invalid refusal containing %s", err, want)
	}
	if n := p.fetchCount(); n != 0 {
		t.Fatalf("the runtime was asked to fetch %d times for a refused manifest", n)
	}
	// An allowed folder is accepted.
	yaml = fmt.Sprintf(registryManifest, "mounter", "  mounts:\n    - {hostPath: /srv/media/photos, runtimePath: /photos}\n")
	if _, err := askRegistry(system, reg, pullRequest([]byte(yaml)), registryAnswerWithin); err != nil {
		t.Fatalf("pull with an allowed mount: %v", err)
	}
}

func TestRegistryPullThatNeverReportsBackFreesItsName(t *testing.T) {
	p := &heldProvider{release: make(chan struct{})}
	t.Cleanup(func() { close(p.release) })
	const deadline = 200 * time.Millisecond
	system, reg := registryUnderTest(t, p, func(r *serviceRegistry) { r.pullWithin = deadline })
	yaml := []byte(fmt.Sprintf(registryManifest, "stuck", ""))
	for attempt := 1; attempt <= 2; attempt++ {
		_, err := askRegistry(system, reg, pullRequest(yaml), registryAnswerWithin)
		var e *Error
		if !errors.As(err, &e) || e.Kind != Failed || !strings.Contains(e.Msg, "the wasmtime runtime did not report back within 200ms") || !strings.Contains(e.Msg, "the name is free again") {
			t.Fatalf("pull %d: %v\nwant the pull's deadline reported", attempt, err)
		}
	}
	if n := p.fetchCount(); n != 2 {
		t.Fatalf("the runtime was asked to fetch %d times, want 2: the second pull must not be refused as already being pulled", n)
	}
	res, err := askRegistry(system, reg, &messages.ListServicesRequest{}, registryAnswerWithin)
	if err != nil || len(res.(*messages.ServiceList).Services) != 0 {
		t.Fatalf("list after two expired pulls: %v %v, want no services", res, err)
	}
}
