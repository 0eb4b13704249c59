// Package docker is the Docker-compatible container runtime provider. Every
// engine call goes through the policy guard (guard.go); the provider adds
// the engine endpoint, image pulls with per-layer progress, and running
// instances fed by the engine's events.
package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

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
}

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
	return &Provider{cfg: cfg}
}

// Runtime implements runtimes.Provider.
func (p *Provider) Runtime() string { return manifest.RuntimeDocker }

// engine returns the guard once the engine answers a ping.
func (p *Provider) engine(ctx context.Context) (*Guard, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.guard == nil {
		cli, err := client.NewClientWithOpts(client.WithHost(p.cfg.Endpoint), client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, fmt.Errorf("the Docker endpoint %s is not usable: %w", p.cfg.Endpoint, err)
		}
		roots := append([]string{p.cfg.DataRoot}, p.cfg.AllowedMounts...)
		p.guard = &Guard{cli: cli, roots: roots}
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
	v, err := g.cli.ServerVersion(ctx)
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
	if _, err := g.cli.ImageInspect(ctx, ref); err != nil {
		progress(&messages.PullProgress{Message: "pulling " + ref})
		if err := p.pull(ctx, g, ref, progress); err != nil {
			return runtimes.Artifact{}, err
		}
	} else {
		progress(&messages.PullProgress{Message: "image " + ref + " is present"})
	}
	info, err := g.cli.ImageInspect(ctx, ref)
	if err != nil {
		return runtimes.Artifact{}, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return runtimes.Artifact{Ref: ref, SHA256: imageDigest(info)}, nil
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

// pull streams the engine's pull messages as progress, at most every
// 200 ms per layer so a fast pull does not flood the CLI.
func (p *Provider) pull(ctx context.Context, g *Guard, ref string, progress func(*messages.PullProgress)) error {
	rc, err := g.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	last := map[string]time.Time{}
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		if m.Error != nil {
			return fmt.Errorf("pull %s: %s", ref, m.Error.Message)
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
}

// Start implements runtimes.Provider. The service keeps one container for
// life: it is made on first start and started again afterwards, so a
// daemon restart finds the same container on the same host ports.
func (p *Provider) Start(ctx context.Context, spec runtimes.InstanceSpec) (runtimes.Instance, error) {
	g, err := p.engine(ctx)
	if err != nil {
		return nil, err
	}
	want := Spec{Node: p.cfg.Node, Service: spec.Name, Image: spec.Artifact.Ref, Env: spec.Manifest.Spec.Env, Command: spec.Manifest.Spec.Command, Ports: spec.Ports, Mounts: spec.Mounts}
	id, err := p.container(ctx, g, want)
	if err != nil {
		return nil, err
	}
	inst := &instance{guard: g, id: id, grace: p.cfg.StopGrace, done: make(chan struct{})}
	watch, cancel := context.WithCancel(context.Background())
	inst.cancel = cancel
	deaths, errs := g.Deaths(watch, id) // subscribed before the start, so no exit is missed
	started := time.Now()
	if err := g.Start(ctx, id); err != nil {
		cancel()
		return nil, fmt.Errorf("start the container: %w", err)
	}
	go inst.watch(watch, deaths, errs)
	go inst.copyLogs(watch, started, spec.Log)
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
// or no longer matches the manifest.
func (p *Provider) container(ctx context.Context, g *Guard, want Spec) (string, error) {
	id, err := g.Find(ctx, want.Node, want.Service)
	if err != nil {
		return "", err
	}
	if id != "" {
		info, err := g.Inspect(ctx, id)
		if err != nil {
			return "", err
		}
		cfg, hc := build(want)
		if info.Config.Image == cfg.Image && samePorts(info.HostConfig.PortBindings, hc.PortBindings) {
			return id, nil
		}
		if err := g.Remove(ctx, id); err != nil {
			return "", err
		}
	}
	return g.Create(ctx, want)
}

func samePorts(a, b map[nat.Port][]nat.PortBinding) bool {
	if len(a) != len(b) {
		return false
	}
	for port, bs := range b {
		if len(a[port]) != len(bs) {
			return false
		}
		for i := range bs {
			if a[port][i] != bs[i] {
				return false
			}
		}
	}
	return true
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

func (e *ExitError) Error() string { return fmt.Sprintf("the container exited with code %d", e.Code) }
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

// watch turns the engine's die event into Done.
func (i *instance) watch(ctx context.Context, deaths <-chan events.Message, errs <-chan error) {
	defer close(i.done)
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
		return
	}
	defer rc.Close()
	stdcopy.StdCopy(log, log, rc)
}

func (i *instance) Stop(ctx context.Context) error {
	i.mu.Lock()
	i.stopping = true
	i.mu.Unlock()
	err := i.guard.Stop(ctx, i.id, i.grace)
	select {
	case <-i.done:
	case <-time.After(i.grace + 5*time.Second):
	}
	i.cancel()
	return err
}

func (i *instance) Done() <-chan struct{} { return i.done }
func (i *instance) Err() error            { return i.err }
