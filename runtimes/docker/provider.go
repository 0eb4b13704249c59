// Package docker is the Docker-compatible container runtime provider. Every
// engine call goes through the policy guard (guard.go); the provider adds
// the engine endpoint, image pulls with per-layer progress, and running
// instances fed by the engine's events.
package docker

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// Config says where the engine is and which host folders containers may
// bind.
type Config struct {
	// Node is this node's peer ID; its containers carry it as a label.
	Node string
	// Endpoint is the engine's address; "" means DefaultEndpoint().
	Endpoint string
	// DataRoot holds every service's data folder.
	DataRoot string
	// AllowedMounts are further folders the node's owner allowed.
	AllowedMounts []string
	// StopGrace is how long a container has between SIGTERM and SIGKILL.
	StopGrace time.Duration
	// EngineCallTimeout bounds each engine call (inspect, list, create,
	// start, remove); 0 means DefaultEngineCallTimeout. A stop has the
	// container's grace on top.
	EngineCallTimeout time.Duration
	// PullTimeout bounds a whole image pull; 0 means DefaultPullTimeout.
	PullTimeout time.Duration
	// PullStallTimeout ends a pull during which the engine reports no
	// progress for this long; 0 means DefaultPullStallTimeout.
	PullStallTimeout time.Duration
}

// Pull deadlines: a large image on a slow link takes long, but a pull that
// has said nothing new for minutes is stuck, not slow.
const (
	DefaultPullTimeout      = 30 * time.Minute
	DefaultPullStallTimeout = 2 * time.Minute
)

// maxPullMessage bounds one line of the engine's pull progress: its
// messages are a few hundred bytes, an error text a few KiB.
const maxPullMessage = 64 << 10

// DefaultEndpoint is $DOCKER_HOST, or the engine's usual address on this OS.
func DefaultEndpoint() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	switch runtime.GOOS {
	case "windows":
		return "npipe:////./pipe/docker_engine"
	case "darwin":
		if home, err := os.UserHomeDir(); err == nil {
			sock := filepath.Join(home, ".docker", "run", "docker.sock")
			if _, err := os.Stat(sock); err == nil {
				return "unix://" + sock
			}
		}
	}
	return "unix:///var/run/docker.sock"
}

// Provider runs docker services. The engine client is made on first use.
type Provider struct {
	cfg Config

	mu    sync.Mutex
	guard *Guard
}

var _ runtimes.Provider = (*Provider)(nil)

// New returns a provider for the engine at cfg.Endpoint.
func New(cfg Config) *Provider {
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint()
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 10 * time.Second
	}
	if cfg.EngineCallTimeout == 0 {
		cfg.EngineCallTimeout = DefaultEngineCallTimeout
	}
	if cfg.PullTimeout == 0 {
		cfg.PullTimeout = DefaultPullTimeout
	}
	if cfg.PullStallTimeout == 0 {
		cfg.PullStallTimeout = DefaultPullStallTimeout
	}
	return &Provider{cfg: cfg}
}

// Runtime implements runtimes.Provider.
func (p *Provider) Runtime() string { return manifest.RuntimeDocker }

// SetAllowedMounts replaces the folders besides the data root that binds
// may come from (config.yaml's mounts.allowed, reloaded while the daemon
// runs); containers created later are checked against the new list.
func (p *Provider) SetAllowedMounts(allowed []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.AllowedMounts = slices.Clone(allowed)
	if p.guard != nil {
		roots := append([]string{p.cfg.DataRoot}, p.cfg.AllowedMounts...)
		p.guard.roots.Store(&roots)
	}
}

// engine returns the guard once the engine answers a ping.
func (p *Provider) engine(ctx context.Context) (*Guard, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.guard == nil {
		cli, err := newEngineClient(p.cfg.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("the Docker endpoint %s is not usable: %w", p.cfg.Endpoint, err)
		}
		roots := append([]string{p.cfg.DataRoot}, p.cfg.AllowedMounts...)
		p.guard = &Guard{cli: cli, endpoint: p.cfg.Endpoint, callTimeout: p.cfg.EngineCallTimeout}
		p.guard.roots.Store(&roots)
	}
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := p.guard.cli.Ping(c); err != nil {
		return nil, fmt.Errorf("no Docker engine answers at %s (%v); start Docker, or point DOCKER_HOST at it", p.cfg.Endpoint, err)
	}
	return p.guard, nil
}

// Capability implements runtimes.Provider.
func (p *Provider) Capability(ctx context.Context) *messages.RuntimeCapability {
	c := &messages.RuntimeCapability{Name: manifest.RuntimeDocker, ManifestRuntimes: []string{manifest.RuntimeDocker}}
	g, err := p.engine(ctx)
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	var v types.Version
	err = g.call(ctx, g.callTimeout, "ask the engine's version", func(c context.Context) (err error) {
		v, err = g.cli.ServerVersion(c)
		return err
	})
	if err != nil {
		c.Detail = err.Error()
		return c
	}
	c.Available = true
	c.Engine = fmt.Sprintf("Docker Engine %s (API %s, %s/%s)", v.Version, g.cli.ClientVersion(), v.Os, v.Arch)
	c.Detail = "containers through the policy guard at " + p.cfg.Endpoint
	return c
}

// Fetch implements runtimes.Provider: the image is pulled when the engine
// does not have it, with progress per layer.
func (p *Provider) Fetch(ctx context.Context, req runtimes.FetchRequest, progress func(*messages.PullProgress)) (runtimes.Artifact, error) {
	g, err := p.engine(ctx)
	if err != nil {
		return runtimes.Artifact{}, err
	}
	ref := req.Manifest.Spec.Source.Image
	if _, err := g.inspectImage(ctx, ref); err != nil {
		if !cerrdefs.IsNotFound(err) {
			return runtimes.Artifact{}, err
		}
		progress(&messages.PullProgress{Message: "pulling " + ref})
		if err := p.pull(ctx, g, ref, progress); err != nil {
			return runtimes.Artifact{}, err
		}
	} else {
		progress(&messages.PullProgress{Message: "image " + ref + " is present"})
	}
	info, err := g.inspectImage(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return runtimes.Artifact{}, fmt.Errorf("the engine at %s finished pulling %s but does not have it (%v); pull again, or check `docker image ls`", g.endpoint, ref, err)
	}
	if err != nil {
		return runtimes.Artifact{}, err
	}
	return runtimes.Artifact{Ref: ref, SHA256: imageDigest(info)}, nil
}

// inspectImage asks the engine about an image, within a deadline.
func (g *Guard) inspectImage(ctx context.Context, ref string) (image.InspectResponse, error) {
	var info image.InspectResponse
	err := g.call(ctx, g.callTimeout, "inspect image "+ref, func(c context.Context) (err error) {
		info, err = g.cli.ImageInspect(c, ref)
		return err
	})
	if err != nil && !cerrdefs.IsNotFound(err) {
		err = fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return info, err
}

// imageDigest is the repository digest where the image came from a
// registry, else its local ID.
func imageDigest(info image.InspectResponse) string {
	for _, d := range info.RepoDigests {
		if _, digest, ok := strings.Cut(d, "@"); ok {
			return digest
		}
	}
	return info.ID
}

// isImage reports whether info is the image an artifact recorded: its
// local ID or one of its repository digests.
func isImage(info image.InspectResponse, digest string) bool {
	if info.ID == digest {
		return true
	}
	for _, d := range info.RepoDigests {
		if _, dg, ok := strings.Cut(d, "@"); ok && dg == digest {
			return true
		}
	}
	return false
}

// errPullStalled is why a pull that stopped progressing was cancelled.
var errPullStalled = errors.New("no progress")

// pull streams the engine's pull messages as progress, at most every
// 200 ms per layer so a fast pull does not flood the CLI. The pull ends
// at PullTimeout overall, or after PullStallTimeout without a new message
// from the engine, so a registry that stops sending cannot hold the
// service in "being pulled".
func (p *Provider) pull(ctx context.Context, g *Guard, ref string, progress func(*messages.PullProgress)) error {
	overall, cancelOverall := context.WithTimeout(ctx, p.cfg.PullTimeout)
	defer cancelOverall()
	pulling, cancel := context.WithCancelCause(overall)
	defer cancel(nil)
	stall := time.AfterFunc(p.cfg.PullStallTimeout, func() { cancel(errPullStalled) })
	defer stall.Stop()
	failed := func(err error) error {
		switch {
		case errors.Is(context.Cause(pulling), errPullStalled):
			return fmt.Errorf("pull %s: the engine reported no progress for %s (the registry stopped sending); check the registry and pull again", ref, p.cfg.PullStallTimeout)
		case errors.Is(overall.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
			return fmt.Errorf("pull %s: not finished within %s; check the registry and the link to it, and pull again", ref, p.cfg.PullTimeout)
		}
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	rc, err := g.cli.ImagePull(pulling, ref, image.PullOptions{})
	if err != nil {
		return failed(err)
	}
	defer rc.Close()
	lines := bufio.NewScanner(rc)
	lines.Buffer(make([]byte, 0, 4096), maxPullMessage)
	last := map[string]time.Time{}
	for lines.Scan() {
		var m jsonmessage.JSONMessage
		if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
			return fmt.Errorf("pull %s: the engine sent a progress message that is not JSON (%v); is %s a Docker engine?", ref, err, g.endpoint)
		}
		if m.Error != nil {
			return fmt.Errorf("pull %s: %s", ref, m.Error.Message)
		}
		// A retry countdown is the engine waiting, not progress.
		if !strings.HasPrefix(m.Status, "Retrying") {
			stall.Reset(p.cfg.PullStallTimeout)
		}
		step := &messages.PullProgress{Layer: m.ID, Message: m.Status}
		if m.Progress != nil {
			step.Current, step.Total = m.Progress.Current, m.Progress.Total
		}
		now := time.Now()
		if step.Current > 0 && step.Current < step.Total && now.Sub(last[m.ID]) < 200*time.Millisecond {
			continue
		}
		last[m.ID] = now
		progress(step)
	}
	if err := lines.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("pull %s: the engine sent a progress message longer than %d KiB; is %s a Docker engine?", ref, maxPullMessage>>10, g.endpoint)
		}
		return failed(err)
	}
	if pulling.Err() != nil {
		return failed(pulling.Err())
	}
	return nil
}

// Start implements runtimes.Provider. The service keeps one container for
// as long as its manifest and image stay the same: it is made on first
// start and started again afterwards, so a daemon restart finds the same
// container on the same host ports. Whatever container is started has
// just passed the guard against the current manifest.
func (p *Provider) Start(ctx context.Context, spec runtimes.InstanceSpec) (runtimes.Instance, error) {
	g, err := p.engine(ctx)
	if err != nil {
		return nil, err
	}
	img, err := g.inspectImage(ctx, spec.Artifact.Ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("the engine no longer has image %s; pull the manifest again", spec.Artifact.Ref)
		}
		return nil, err
	}
	if spec.Artifact.SHA256 != "" && !isImage(img, spec.Artifact.SHA256) {
		return nil, fmt.Errorf("image %s is now %s, not the %s pulled with the manifest; pull the manifest again to run the new image", spec.Artifact.Ref, shortID(strings.TrimPrefix(img.ID, "sha256:")), spec.Artifact.SHA256)
	}
	want := Spec{Node: p.cfg.Node, Service: spec.Name, Image: spec.Artifact.Ref, ImageID: img.ID, Env: spec.Manifest.Spec.Env, Command: spec.Manifest.Spec.Command, Ports: spec.Ports, Mounts: spec.Mounts}
	var id string
	if spec.Beside {
		// The running container stays as it is; the new one is made
		// anew under a name of its own.
		want.Suffix = newSuffix()
		id, err = g.Create(ctx, want)
	} else {
		id, err = p.container(ctx, g, want, spec.Log)
	}
	if err != nil {
		return nil, err
	}
	inst := &instance{guard: g, id: id, grace: p.cfg.StopGrace, done: make(chan struct{})}
	watch, cancel := context.WithCancel(context.Background())
	inst.cancel = cancel
	deaths, errs := g.Deaths(watch, id) // subscribed before the start, so no exit is missed
	started := time.Now()
	if err := g.Start(ctx, id, want); err != nil {
		cancel()
		if spec.Beside {
			// A second container that never ran must not stay beside
			// the service's own.
			rm, done := context.WithTimeout(context.Background(), time.Minute)
			g.Remove(rm, id)
			done()
		}
		return nil, err
	}
	logs, stopLogs := context.WithCancel(context.Background())
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		inst.copyLogs(logs, started, spec.Log)
	}()
	go inst.watch(watch, deaths, errs, stopLogs, logsDone)
	for _, port := range spec.Ports {
		if !waitReady(port.HostPort, inst.done, readyWithin) {
			fmt.Fprintf(spec.Log, "fungi: %s does not answer on 127.0.0.1:%d yet\n", spec.Name, port.HostPort)
		}
	}
	return inst, nil
}

// readyWithin bounds how long a start waits for the service to answer.
const readyWithin = 10 * time.Second

// waitReady waits until a connection to the published port reaches the
// service. The engine's proxy accepts at once whether or not the service
// listens, and closes the connection when it does not; a connection that
// stays open, or says something, has reached the service.
func waitReady(port int, died <-chan struct{}, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-died:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			_, err := c.Read(make([]byte, 1))
			c.Close()
			var ne net.Error
			if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// container returns the service's container, made anew when it is missing
// or is not exactly the one want makes.
func (p *Provider) container(ctx context.Context, g *Guard, want Spec, log io.Writer) (string, error) {
	id, err := g.Find(ctx, want.Node, want.Service)
	if err != nil {
		return "", err
	}
	if id != "" {
		err := g.Check(ctx, id, want)
		if err == nil {
			return id, nil
		}
		fmt.Fprintf(log, "fungi: making the container anew: %v\n", err)
		if err := g.Remove(ctx, id); err != nil {
			return "", err
		}
	}
	return g.Create(ctx, want)
}

// Remove deletes the service's container, if it has one.
func (p *Provider) Remove(ctx context.Context, service string) error {
	g, err := p.engine(ctx)
	if err != nil {
		return err
	}
	id, err := g.Find(ctx, p.cfg.Node, service)
	if err != nil || id == "" {
		return err
	}
	return g.Remove(ctx, id)
}

// ExitError is a container that exited on its own.
type ExitError struct{ Code int }

// Error says the container's exit code.
func (e *ExitError) Error() string { return fmt.Sprintf("the container exited with code %d", e.Code) }

// ExitCode is the container's exit code, for the service's restart policy.
func (e *ExitError) ExitCode() int { return e.Code }

type instance struct {
	guard  *Guard
	id     string
	grace  time.Duration
	cancel context.CancelFunc

	mu       sync.Mutex
	stopping bool
	done     chan struct{}
	err      error
}

func (i *instance) ContainerID() string { return i.id }

// logsDrain bounds how long an exited container's last output may take to
// reach the service log before the log stream is cut.
const logsDrain = 2 * time.Second

// watch turns the engine's die event into Done. Every way out ends the
// events subscription and the log stream, so an exited container leaves
// nothing open on the engine.
func (i *instance) watch(ctx context.Context, deaths <-chan events.Message, errs <-chan error, stopLogs context.CancelFunc, logsDone <-chan struct{}) {
	defer close(i.done)
	defer stopLogs()
	defer i.cancel()
	select {
	case <-deaths:
	case err := <-errs:
		if ctx.Err() != nil {
			return
		}
		i.err = fmt.Errorf("lost the engine's events: %w", err)
		return
	case <-ctx.Done():
		return
	}
	i.cancel()
	// The engine ends the follow stream once the container is gone; wait
	// for it so the container's last words reach the log.
	select {
	case <-logsDone:
	case <-time.After(logsDrain):
	}
	i.mu.Lock()
	stopping := i.stopping
	i.mu.Unlock()
	if stopping {
		return
	}
	info, err := i.guard.Inspect(context.Background(), i.id)
	if err != nil {
		i.err = err
		return
	}
	i.err = &ExitError{Code: info.State.ExitCode}
}

// copyLogs appends the container's output to the service log while it runs.
func (i *instance) copyLogs(ctx context.Context, since time.Time, log io.Writer) {
	rc, err := i.guard.Logs(ctx, i.id, since.Add(-time.Second))
	if err != nil {
		fmt.Fprintf(log, "fungi: cannot follow the container's output: %v\n", err)
		return
	}
	defer rc.Close()
	if err := demuxLogs(log, rc); err != nil && ctx.Err() == nil {
		fmt.Fprintf(log, "fungi: stopped following the container's output: %v\n", err)
	}
}

// maxSystemMessage bounds the engine's own error frames in a log stream.
const maxSystemMessage = 4 << 10

// demuxLogs copies the engine's multiplexed log stream (an 8-byte header
// per frame: stream, 3 zero bytes, big-endian size) to log. A frame is
// streamed through, never held whole, so the size the engine claims
// allocates nothing.
func demuxLogs(log io.Writer, r io.Reader) error {
	var header [8]byte
	for {
		if _, err := io.ReadFull(r, header[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read a log frame header: %w", err)
		}
		size := int64(binary.BigEndian.Uint32(header[4:]))
		switch stdcopy.StdType(header[0]) {
		case stdcopy.Stdout, stdcopy.Stderr:
			if n, err := io.CopyN(log, r, size); err != nil {
				return fmt.Errorf("read a log frame (%d of %d bytes): %w", n, size, err)
			}
		case stdcopy.Systemerr:
			msg, err := io.ReadAll(io.LimitReader(r, min(size, maxSystemMessage)))
			if err != nil {
				return fmt.Errorf("read the engine's log error: %w", err)
			}
			return fmt.Errorf("the engine: %s", msg)
		default:
			return fmt.Errorf("the engine sent a log frame of unknown stream %d", header[0])
		}
	}
}

func (i *instance) Stop(ctx context.Context) error {
	i.mu.Lock()
	i.stopping = true
	i.mu.Unlock()
	err := i.guard.Stop(ctx, i.id, i.grace)
	select {
	case <-i.done:
	case <-time.After(i.grace + stopExtra):
	}
	i.cancel()
	return err
}

// Discard removes the container of an instance that was replaced by an
// update in place, once it has stopped: the service keeps one container.
func (i *instance) Discard(ctx context.Context) error {
	return i.guard.Remove(ctx, i.id)
}

// newSuffix is a short random name part for a second container.
func newSuffix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (i *instance) Done() <-chan struct{} { return i.done }
func (i *instance) Err() error            { return i.err }
