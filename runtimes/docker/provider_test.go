package docker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// engineTest is a provider on the real engine with a node ID of its own;
// every container of that node is removed when the test ends.
type engineTest struct {
	p    *Provider
	g    *Guard
	data string
	node string
}

func newEngineTest(t *testing.T) *engineTest {
	t.Helper()
	if !testutil.DockerAvailable(t) {
		t.Skip("no Docker engine answers (FUNGI_REQUIRE_DOCKER=1 makes this a failure)")
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	node := "12D3KooWdockertest" + hex.EncodeToString(suffix)
	data := t.TempDir()
	p := New(Config{Node: node, DataRoot: data, StopGrace: time.Second})
	g, err := p.engine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeNodeContainers(t, g, node) })
	return &engineTest{p: p, g: g, data: data, node: node}
}

func removeNodeContainers(t *testing.T, g *Guard, node string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := g.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelNode+"="+node))})
	if err != nil {
		t.Errorf("list the test's containers: %v", err)
		return
	}
	for _, c := range list {
		if err := g.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("remove container %s: %v", c.ID, err)
		}
	}
}

// instanceSpec is a service of the example image, its artifact recorded as
// Fetch records it.
func (e *engineTest) instanceSpec(t *testing.T, name string) runtimes.InstanceSpec {
	t.Helper()
	image := testutil.BuildExampleImage(t)
	m := &manifest.Manifest{}
	m.Spec.Runtime = manifest.RuntimeDocker
	m.Spec.Source.Image = image
	art, err := e.p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: m}, func(*messages.PullProgress) {})
	if err != nil {
		t.Fatal(err)
	}
	return runtimes.InstanceSpec{Name: name, Manifest: m, Artifact: art, Log: &testutil.SyncBuffer{}}
}

func (e *engineTest) start(t *testing.T, spec runtimes.InstanceSpec) (runtimes.Instance, container.InspectResponse) {
	t.Helper()
	inst, err := e.p.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("start %s: %v", spec.Name, err)
	}
	id, err := e.g.Find(context.Background(), e.node, spec.Name)
	if err != nil || id == "" {
		t.Fatalf("find the container of %s: %q, %v", spec.Name, id, err)
	}
	info, err := e.g.cli.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return inst, info
}

func stop(t *testing.T, inst runtimes.Instance) {
	t.Helper()
	if err := inst.Stop(context.Background()); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// A container is reused only while the manifest would make exactly it:
// a changed env, a removed mount or a changed command each make it anew,
// and the new container has what the manifest now says.
func TestReuseOnlyAnIdenticalContainer(t *testing.T) {
	e := newEngineTest(t)
	spec := e.instanceSpec(t, "reuse")
	mountDir := filepath.Join(e.data, "reuse", "one")
	if err := os.MkdirAll(mountDir, 0o755); err != nil {
		t.Fatal(err)
	}
	spec.Manifest.Spec.Env = map[string]string{"GREETING": "one"}
	spec.Ports = []runtimes.PortBinding{{Name: "http", ServicePort: 80, HostPort: testutil.FreePort(t)}}
	spec.Mounts = []manifest.ResolvedMount{{HostPath: mountDir, RuntimePath: "/one"}}

	inst, first := e.start(t, spec)
	stop(t, inst)
	inst, again := e.start(t, spec)
	stop(t, inst)
	if again.ID != first.ID {
		t.Fatalf("an unchanged manifest made a new container (%s, was %s)", again.ID, first.ID)
	}

	spec.Manifest.Spec.Env = map[string]string{"GREETING": "two"}
	inst, envChanged := e.start(t, spec)
	stop(t, inst)
	if envChanged.ID == first.ID {
		t.Fatalf("a changed env reused container %s", first.ID)
	}
	if !containsString(envChanged.Config.Env, "GREETING=two") || containsString(envChanged.Config.Env, "GREETING=one") {
		t.Fatalf("the container's env is %v, want GREETING=two", envChanged.Config.Env)
	}

	spec.Mounts = nil
	inst, unmounted := e.start(t, spec)
	stop(t, inst)
	if unmounted.ID == envChanged.ID {
		t.Fatalf("a removed mount reused container %s", envChanged.ID)
	}
	if len(unmounted.HostConfig.Mounts) != 0 || len(unmounted.Mounts) != 0 {
		t.Fatalf("a removed mount is still mounted: %v %v", unmounted.HostConfig.Mounts, unmounted.Mounts)
	}

	spec.Manifest.Spec.Command = []string{"-listen", ":80"}
	inst, commanded := e.start(t, spec)
	stop(t, inst)
	if commanded.ID == unmounted.ID {
		t.Fatalf("a changed command reused container %s", unmounted.ID)
	}
	if strings.Join(commanded.Config.Cmd, " ") != "-listen :80" {
		t.Fatalf("the container's command is %q, want the manifest's", commanded.Config.Cmd)
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// A container changed after fungi made it (docker update gives it an
// engine restart policy) is not reused: it is made anew, as the guard
// would make it.
func TestUpdatedContainerIsMadeAnew(t *testing.T) {
	e := newEngineTest(t)
	spec := e.instanceSpec(t, "updated")
	inst, first := e.start(t, spec)
	stop(t, inst)
	ctx := context.Background()
	if _, err := e.g.cli.ContainerUpdate(ctx, first.ID, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways}}); err != nil {
		t.Fatal(err)
	}
	inst, second := e.start(t, spec)
	defer stop(t, inst)
	if second.ID == first.ID {
		t.Fatalf("the updated container %s was reused", first.ID)
	}
	if second.HostConfig.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Fatalf("the running container has engine restart policy %q", second.HostConfig.RestartPolicy.Name)
	}
	if log := spec.Log.(*testutil.SyncBuffer).String(); !strings.Contains(log, "an engine restart policy") {
		t.Fatalf("the service log does not say why the container was made anew:\n%s", log)
	}
}

// A privileged container under the service's name, carrying every label
// fungi would give it (its hash too), is never started: the guard checks
// the engine's account of it, and the container that runs is fungi's own.
func TestForgedContainerIsNeverStarted(t *testing.T) {
	e := newEngineTest(t)
	spec := e.instanceSpec(t, "forged")
	spec.Ports = []runtimes.PortBinding{{Name: "http", ServicePort: 80, HostPort: testutil.FreePort(t)}}
	inst, legit := e.start(t, spec)
	stop(t, inst)
	ctx := context.Background()
	if err := e.g.cli.ContainerRemove(ctx, legit.ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	cfg := &container.Config{Image: spec.Artifact.Ref, Labels: legit.Config.Labels, ExposedPorts: legit.Config.ExposedPorts}
	hc := &container.HostConfig{Privileged: true, PortBindings: legit.HostConfig.PortBindings, CgroupnsMode: container.CgroupnsModePrivate}
	forged, err := e.g.cli.ContainerCreate(ctx, cfg, hc, nil, nil, ContainerName(e.node, "forged"))
	if err != nil {
		t.Fatal(err)
	}

	// The guard itself refuses to start it...
	want := Spec{Node: e.node, Service: "forged", Image: spec.Artifact.Ref, ImageID: legit.Image, Ports: spec.Ports}
	if err := e.g.Start(ctx, forged.ID, want); err == nil || !strings.Contains(err.Error(), "privileged mode") {
		t.Fatalf("the guard started a privileged container: %v", err)
	}
	if info, _ := e.g.cli.ContainerInspect(ctx, forged.ID); info.State == nil || info.State.Running {
		t.Fatal("the privileged container is running")
	}
	// ...and a start of the service replaces it.
	inst, running := e.start(t, spec)
	defer stop(t, inst)
	if running.ID == forged.ID || running.HostConfig.Privileged {
		t.Fatalf("the service runs in the forged privileged container %s", running.ID)
	}
	if log := spec.Log.(*testutil.SyncBuffer).String(); !strings.Contains(log, "privileged mode") {
		t.Fatalf("the service log does not say why the container was made anew:\n%s", log)
	}
}

// eventsSubscriptions counts the goroutines holding an engine events
// stream open (the client runs one per subscription).
func eventsSubscriptions() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "client.(*Client).Events") {
			count++
		}
	}
	return count
}

// A container that exits on its own ends its engine events subscription
// and log stream; its last output reaches the service log first.
func TestExitedContainerLeavesNoSubscription(t *testing.T) {
	e := newEngineTest(t)
	baseline := eventsSubscriptions()
	spec := e.instanceSpec(t, "exits")
	spec.Manifest.Spec.Command = []string{"-no-such-flag"}
	inst, err := e.p.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the container to exit", func() error {
		select {
		case <-inst.Done():
			return nil
		default:
			return errors.New("still running")
		}
	})
	var exit *ExitError
	if !errors.As(inst.Err(), &exit) || exit.Code != 2 {
		t.Fatalf("exit error %v, want code 2", inst.Err())
	}
	if log := spec.Log.(*testutil.SyncBuffer).String(); !strings.Contains(log, "flag provided but not defined: -no-such-flag") {
		t.Fatalf("the container's last output is not in the log:\n%s", log)
	}
	testutil.WaitFor(t, 10*time.Second, "the events subscription to end", func() error {
		if n := eventsSubscriptions(); n > baseline {
			return fmt.Errorf("%d events subscriptions open, %d before the start", n, baseline)
		}
		return nil
	})
}

// A host port another program holds is reported as that, with the port.
func TestPortHeldByAnotherProgram(t *testing.T) {
	e := newEngineTest(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	spec := e.instanceSpec(t, "held")
	spec.Ports = []runtimes.PortBinding{{Name: "http", ServicePort: 80, HostPort: port}}
	inst, err := e.p.Start(context.Background(), spec)
	if err == nil {
		inst.Stop(context.Background())
		t.Fatal("the container started on a held port")
	}
	want := fmt.Sprintf("host port 127.0.0.1:%d is in use: another program holds it", port)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("got %q, want it to say %q", err, want)
	}
}

// The engine's start errors map to their cause per errno; the texts are
// the engine's own (20.10 and 28).
func TestStartErrorCauses(t *testing.T) {
	tests := []struct {
		engine  string
		want    string
		notWant string
	}{
		{"Error response from daemon: driver failed programming external connectivity on endpoint fungi-web-abc (a33e): Error starting userland proxy: listen tcp4 127.0.0.1:38213: bind: address already in use",
			"host port 127.0.0.1:38213 is in use: another program holds it", ""},
		{"Error response from daemon: driver failed programming external connectivity on endpoint fungi-web-abc (a33e): Error starting userland proxy: listen tcp4 127.0.0.1:80: bind: permission denied",
			"not permitted to bind 127.0.0.1:80 (permission denied)", "another program"},
		{"Error response from daemon: failed to set up container networking: driver failed programming external connectivity on endpoint fungi-web-abc (a33e): failed to bind host port for 127.0.0.1:443:172.17.0.2:80/tcp: permission denied",
			"not permitted to bind 127.0.0.1:443 (permission denied)", "another program"},
		{"Error response from daemon: driver failed programming external connectivity on endpoint x (y): Error starting userland proxy: listen tcp4 127.0.0.1:40000: bind: cannot assign requested address",
			"that address is not configured on this host", "another program"},
		{`Error response from daemon: failed to create task for container: OCI runtime create failed: exec: "/app": permission denied`,
			"the engine could not start the container", "bind"},
	}
	for _, tc := range tests {
		err := explainStartError(errors.New(tc.engine))
		if !strings.Contains(err.Error(), tc.want) || (tc.notWant != "" && strings.Contains(err.Error(), tc.notWant)) {
			t.Errorf("engine %q\n became %q\n want %q without %q", tc.engine, err, tc.want, tc.notWant)
		}
	}
}

// demuxLogs streams a frame whatever size its header claims: a header
// claiming 512 MiB over a short stream allocates nothing like it.
func TestLogFrameSizeIsNotAllocated(t *testing.T) {
	claim := uint32(512 << 20)
	stream := append([]byte{1, 0, 0, 0, byte(claim >> 24), byte(claim >> 16), byte(claim >> 8), byte(claim)}, "hello"...)
	var out bytes.Buffer
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := demuxLogs(&out, bytes.NewReader(stream))
	runtime.ReadMemStats(&after)
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 1<<20 {
		t.Fatalf("a frame claiming %d bytes allocated %d bytes", claim, allocated)
	}
	if err == nil || !strings.Contains(err.Error(), "5 of 536870912 bytes") {
		t.Fatalf("got %v, want a short frame reported", err)
	}
	if out.String() != "hello" {
		t.Fatalf("copied %q, want the frame's bytes", out.String())
	}
}

// The guard's checks of an existing container hold on what the engine
// really reports for a container it made.
func TestVerifyAcceptsWhatTheGuardMade(t *testing.T) {
	e := newEngineTest(t)
	spec := e.instanceSpec(t, "verify")
	mountDir := filepath.Join(e.data, "verify", "d")
	os.MkdirAll(mountDir, 0o755)
	ctx := context.Background()
	img, err := e.g.inspectImage(ctx, spec.Artifact.Ref)
	if err != nil {
		t.Fatal(err)
	}
	want := Spec{Node: e.node, Service: "verify", Image: spec.Artifact.Ref, ImageID: img.ID,
		Env: map[string]string{"A": "1"}, Command: []string{"-listen", ":80"},
		Ports:  []runtimes.PortBinding{{Name: "http", ServicePort: 80, HostPort: testutil.FreePort(t)}},
		Mounts: []manifest.ResolvedMount{{HostPath: mountDir, RuntimePath: "/d"}}}
	id, err := e.g.Create(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.g.Check(ctx, id, want); err != nil {
		t.Fatalf("the guard refuses the container it made: %v", err)
	}
	other := want
	other.Mounts = []manifest.ResolvedMount{{HostPath: mountDir, RuntimePath: "/elsewhere"}}
	var mismatch *MismatchError
	if err := e.g.Check(ctx, id, other); !errors.As(err, &mismatch) || !strings.Contains(err.Error(), "its mounts") {
		t.Fatalf("a moved mount: got %v, want a mismatch naming the mounts", err)
	}
}

// The container runs the image that was pulled with the manifest: when the
// tag now names another image, the start is refused and says what to do.
func TestStartRefusesAnImageOtherThanThePulledOne(t *testing.T) {
	e := newEngineTest(t)
	spec := e.instanceSpec(t, "moved")
	spec.Artifact.SHA256 = "sha256:" + strings.Repeat("0", 64)
	inst, err := e.p.Start(context.Background(), spec)
	if err == nil {
		inst.Stop(context.Background())
		t.Fatal("a container started from an image other than the pulled one")
	}
	if !strings.Contains(err.Error(), "not the sha256:"+strings.Repeat("0", 64)+" pulled with the manifest; pull the manifest again") {
		t.Fatalf("got %q, want the image change named", err)
	}
	if id, _ := e.g.Find(context.Background(), e.node, "moved"); id != "" {
		t.Fatalf("container %s was made for an image other than the pulled one", id)
	}
}
