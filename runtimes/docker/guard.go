package docker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// Labels every container fungi makes carries; an operation on a container
// without LabelManaged is refused, so a user's own containers are never
// touched.
const (
	LabelManaged = "dev.fungi.managed"
	LabelService = "dev.fungi.service"
	// LabelNode is the peer ID of the node that made the container, so
	// several nodes can share one engine.
	LabelNode = "dev.fungi.node"
	// LabelSpec is the hash of everything fungi asked the engine for when
	// it made the container (see specHash); a container is reused only
	// when the current manifest hashes the same.
	LabelSpec = "dev.fungi.spec"
)

// Deadlines of engine calls. A call that does not answer within them fails
// with the endpoint named, so a stuck engine never wedges a service.
const (
	// DefaultEngineCallTimeout bounds inspect, list, create, start and
	// remove unless Config.EngineCallTimeout says otherwise.
	DefaultEngineCallTimeout = 30 * time.Second
	// stopExtra is how long a stop may take beyond the container's grace.
	stopExtra = 15 * time.Second
)

// Spec is all a manifest can say about a container. There is no field for
// anything else, so nothing else can reach the engine.
type Spec struct {
	Node    string
	Service string
	// Image is the image reference the container is made from.
	Image string
	// ImageID is the engine's ID of Image, resolved just before the
	// container is made or reused; the container must run exactly it.
	ImageID string
	Env     map[string]string
	Command []string
	Ports   []runtimes.PortBinding
	Mounts  []manifest.ResolvedMount
	// Suffix makes the container's name unique when a second container
	// of the service starts beside the first (an update in place).
	Suffix string
}

// ErrNotManaged is the refusal to touch a container fungi did not make.
var ErrNotManaged = errors.New("not managed by fungi")

// Guard is the policy guard: the only code that builds container specs and
// calls the engine's container API. Every container it creates passes
// checkPolicy; every container it starts passes verify, on the engine's
// account of it, against the current manifest; every operation on an
// existing container checks its label.
type Guard struct {
	cli *client.Client
	// endpoint names the engine in errors.
	endpoint string
	// callTimeout bounds each engine call but a stop's and a stream's.
	callTimeout time.Duration
	// roots are the folders binds may come from: the services' data root
	// and the folders the node's owner allowed.
	roots atomic.Pointer[[]string]
}

// ContainerName is the engine name of a service's container: the service
// name and the end of the node's peer ID, so two nodes on one engine do
// not collide.
func ContainerName(node, service string) string {
	if len(node) > 8 {
		node = node[len(node)-8:]
	}
	return "fungi-" + service + "-" + strings.ToLower(node)
}

// build turns a Spec into the engine's container configuration, labelled
// with the hash of that configuration.
func build(spec Spec) (*container.Config, *container.HostConfig) {
	cfg, hc := buildUnlabelled(spec)
	cfg.Labels[LabelSpec] = specHash(spec.ImageID, cfg, hc)
	return cfg, hc
}

// specHash is a digest of the whole configuration fungi asks the engine
// for, and of the image it runs: any change to env, command, binds, ports,
// labels, restart settings or the image changes it.
func specHash(imageID string, cfg *container.Config, hc *container.HostConfig) string {
	// encoding/json writes map keys sorted, so equal configurations hash
	// equally.
	data, err := json.Marshal(struct {
		Version string
		ImageID string
		Config  *container.Config
		Host    *container.HostConfig
	}{"1", imageID, cfg, hc})
	if err != nil {
		// Every field is plain data; Marshal cannot fail on it.
		panic(fmt.Sprintf("hash a container configuration: %v", err))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func buildUnlabelled(spec Spec) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image:        spec.Image,
		Labels:       map[string]string{LabelManaged: "true", LabelService: spec.Service, LabelNode: spec.Node},
		ExposedPorts: nat.PortSet{},
	}
	for _, k := range sortedKeys(spec.Env) {
		cfg.Env = append(cfg.Env, k+"="+spec.Env[k])
	}
	if len(spec.Command) > 0 {
		cfg.Cmd = append([]string(nil), spec.Command...)
	}
	hc := &container.HostConfig{
		PortBindings:  nat.PortMap{},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		NetworkMode:   "bridge",
		// Said explicitly: on cgroup v1 hosts the engine's default is the
		// host's cgroup namespace, which the guard refuses.
		CgroupnsMode: container.CgroupnsModePrivate,
	}
	for _, p := range spec.Ports {
		port := nat.Port(strconv.Itoa(p.ServicePort) + "/tcp")
		cfg.ExposedPorts[port] = struct{}{}
		hc.PortBindings[port] = append(hc.PortBindings[port], nat.PortBinding{HostIP: "127.0.0.1", HostPort: strconv.Itoa(p.HostPort)})
	}
	for _, m := range spec.Mounts {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.HostPath, Target: m.RuntimePath, ReadOnly: m.ReadOnly})
	}
	return cfg, hc
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkPolicy refuses a configuration that asks for anything a manifest
// cannot: it is the guard's second line, should build ever change.
func checkPolicy(cfg *container.Config, hc *container.HostConfig, roots []string) error {
	var problems []string
	no := func(cond bool, what string) {
		if cond {
			problems = append(problems, what)
		}
	}
	no(cfg.Labels[LabelManaged] != "true" || cfg.Labels[LabelService] == "", "the fungi labels are missing")
	no(hc.Privileged, "privileged mode")
	no(hc.NetworkMode.IsHost(), "the host network")
	no(hc.NetworkMode.IsContainer(), "another container's network")
	no(hc.PidMode.IsContainer(), "another container's PID namespace")
	no(hc.IpcMode.IsContainer(), "another container's IPC namespace")
	no(hc.PidMode.IsHost(), "the host PID namespace")
	no(hc.IpcMode.IsHost(), "the host IPC namespace")
	no(hc.UTSMode.IsHost(), "the host UTS namespace")
	no(hc.UsernsMode.IsHost(), "the host user namespace")
	no(hc.CgroupnsMode.IsHost(), "the host cgroup namespace")
	no(len(hc.Devices) > 0 || len(hc.DeviceRequests) > 0 || len(hc.DeviceCgroupRules) > 0, "devices")
	no(len(hc.CapAdd) > 0, "added capabilities")
	no(len(hc.SecurityOpt) > 0, "security options")
	no(len(hc.Sysctls) > 0, "sysctls")
	no(len(hc.Binds) > 0 || len(hc.VolumesFrom) > 0 || hc.VolumeDriver != "", "binds other than the manifest's mounts")
	no(hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled, "an engine restart policy (fungi applies the manifest's)")
	no(hc.PublishAllPorts, "publishing every port")
	no(len(hc.ExtraHosts) > 0 || len(hc.Links) > 0, "host entries or links")
	for port, bindings := range hc.PortBindings {
		for _, b := range bindings {
			no(b.HostIP != "127.0.0.1", fmt.Sprintf("port %s published on %q instead of 127.0.0.1", port, b.HostIP))
		}
	}
	for _, m := range hc.Mounts {
		no(m.Type != mount.TypeBind, fmt.Sprintf("a %s mount", m.Type))
		no(!within(m.Source, roots), fmt.Sprintf("a bind of %s, outside the services' data folders", m.Source))
		no(m.BindOptions != nil && m.BindOptions.Propagation != "", "bind propagation")
	}
	if len(problems) > 0 {
		return fmt.Errorf("the policy guard refused the container: it asks for %s", strings.Join(problems, ", "))
	}
	return nil
}

func within(p string, roots []string) bool {
	p = filepath.Clean(p)
	for _, r := range roots {
		r = filepath.Clean(r)
		if p == r || strings.HasPrefix(p, r+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// verify is the guard's check of a container it is about to start or
// reuse, made on the engine's own account of it: the container must pass
// the policy and be exactly the one want makes. The labelled hash stands
// for what fungi asked for; the fields compared as well are those the
// engine reports back unchanged, so a container altered after it was made
// (docker update, or one made by hand with copied labels) is caught.
func verify(info container.InspectResponse, want Spec, roots []string) error {
	name := strings.TrimPrefix(info.Name, "/")
	if info.Config == nil || info.HostConfig == nil {
		return fmt.Errorf("the engine did not describe container %s; inspect it with `docker inspect %s`", name, name)
	}
	if err := checkPolicy(info.Config, info.HostConfig, roots); err != nil {
		return err
	}
	cfg, hc := build(want)
	var diffs []string
	differ := func(cond bool, what string) {
		if cond {
			diffs = append(diffs, what)
		}
	}
	differ(info.Config.Labels[LabelService] != want.Service || info.Config.Labels[LabelNode] != want.Node, "its service or node label")
	differ(info.Image != want.ImageID, fmt.Sprintf("its image %s (the manifest's %s is %s)", shortID(strings.TrimPrefix(info.Image, "sha256:")), want.Image, shortID(strings.TrimPrefix(want.ImageID, "sha256:"))))
	differ(info.Config.Labels[LabelSpec] != cfg.Labels[LabelSpec], "its configuration hash (env, command, mounts, ports or image)")
	differ(!sameMounts(info.HostConfig.Mounts, hc.Mounts), "its mounts")
	differ(!samePorts(info.HostConfig.PortBindings, hc.PortBindings), "its published ports")
	for _, kv := range cfg.Env {
		differ(!slices.Contains(info.Config.Env, kv), "its environment")
	}
	differ(len(cfg.Cmd) > 0 && !slices.Equal([]string(cfg.Cmd), []string(info.Config.Cmd)), "its command")
	if len(diffs) > 0 {
		return &MismatchError{Container: name, Differences: slices.Compact(diffs)}
	}
	return nil
}

// MismatchError is a container that is not the one the current manifest
// makes.
type MismatchError struct {
	Container   string
	Differences []string
}

// Error names the container and what differs.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("container %s differs from the manifest in %s", e.Container, strings.Join(e.Differences, ", "))
}

func sameMounts(a, b []mount.Mount) bool {
	key := func(m mount.Mount) string {
		return fmt.Sprintf("%s\x00%s\x00%s\x00%t", m.Type, filepath.Clean(m.Source), m.Target, m.ReadOnly)
	}
	if len(a) != len(b) {
		return false
	}
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i], kb[i] = key(a[i]), key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

func samePorts(a, b nat.PortMap) bool {
	if len(a) != len(b) {
		return false
	}
	for port, bs := range b {
		if !slices.Equal(a[port], bs) {
			return false
		}
	}
	return true
}

// portInEngineText finds the host address:port in an engine's error text.
var portInEngineText = regexp.MustCompile(`\b(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})\b`)

// explainStartError turns the engine's answer to a failed start into its
// cause. A published port that cannot be bound comes back as text from the
// engine (its proxy's bind error), so the errno is read from that text:
// EADDRINUSE is another program on the port, EACCES is the engine not
// being allowed to bind it, EADDRNOTAVAIL an address this host lacks.
func explainStartError(err error) error {
	text := err.Error()
	portProblem := strings.Contains(text, "external connectivity") || strings.Contains(text, "userland proxy") ||
		strings.Contains(text, "bind host port") || strings.Contains(text, "listen tcp")
	if !portProblem {
		return fmt.Errorf("the engine could not start the container: %w", err)
	}
	where := "a published port"
	if m := portInEngineText.FindStringSubmatch(text); m != nil {
		where = m[1] + ":" + m[2]
	}
	switch {
	case strings.Contains(text, "address already in use"):
		return fmt.Errorf("host port %s is in use: another program holds it; stop that program, or set another hostPort in the manifest (engine: %w)", where, err)
	case strings.Contains(text, "permission denied"):
		return fmt.Errorf("the engine is not permitted to bind %s (permission denied): ports below 1024 need privileges it lacks (a rootless engine needs net.ipv4.ip_unprivileged_port_start lowered); set a hostPort of 1024 or above (engine: %w)", where, err)
	case strings.Contains(text, "cannot assign requested address"):
		return fmt.Errorf("the engine cannot bind %s: that address is not configured on this host (engine: %w)", where, err)
	}
	return fmt.Errorf("the engine could not publish %s: %w", where, err)
}

// call bounds one engine call and names the engine when it runs out.
func (g *Guard) call(ctx context.Context, within time.Duration, what string, fn func(context.Context) error) error {
	if within <= 0 {
		within = DefaultEngineCallTimeout
	}
	c, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	err := fn(c)
	if err != nil && c.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		return fmt.Errorf("%s: the Docker engine at %s did not answer within %s; check it with `docker info`: %w", what, g.endpoint, within, err)
	}
	return err
}

// Create makes the service's container from spec.
func (g *Guard) Create(ctx context.Context, spec Spec) (string, error) {
	cfg, hc := build(spec)
	if err := checkPolicy(cfg, hc, *g.roots.Load()); err != nil {
		return "", err
	}
	name := ContainerName(spec.Node, spec.Service)
	if spec.Suffix != "" {
		name += "-" + spec.Suffix
	}
	var resp container.CreateResponse
	err := g.call(ctx, g.callTimeout, "create the container", func(c context.Context) (err error) {
		resp, err = g.cli.ContainerCreate(c, cfg, hc, nil, nil, name)
		return err
	})
	if err != nil {
		if strings.Contains(err.Error(), "Conflict") {
			return "", fmt.Errorf("a container named %s already exists and fungi did not make it; rename or remove it (fungi never touches it)", name)
		}
		return "", fmt.Errorf("create the container: %w", err)
	}
	return resp.ID, nil
}

// managed inspects a container and refuses it unless fungi made it.
func (g *Guard) managed(ctx context.Context, id string) (container.InspectResponse, error) {
	var info container.InspectResponse
	err := g.call(ctx, g.callTimeout, "inspect container "+shortID(id), func(c context.Context) (err error) {
		info, err = g.cli.ContainerInspect(c, id)
		return err
	})
	if err != nil {
		return info, err
	}
	if info.Config == nil || info.Config.Labels[LabelManaged] != "true" {
		return info, fmt.Errorf("container %s (%s) is %w; refusing to touch it", strings.TrimPrefix(info.Name, "/"), shortID(id), ErrNotManaged)
	}
	return info, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Find returns the container of a node's service, or "" when it has none.
func (g *Guard) Find(ctx context.Context, node, service string) (string, error) {
	var list []container.Summary
	err := g.call(ctx, g.callTimeout, "list the containers", func(c context.Context) (err error) {
		list, err = g.cli.ContainerList(c, container.ListOptions{All: true, Filters: filters.NewArgs(
			filters.Arg("label", LabelManaged+"=true"),
			filters.Arg("label", LabelService+"="+service),
			filters.Arg("label", LabelNode+"="+node),
		)})
		return err
	})
	if err != nil {
		return "", err
	}
	if len(list) == 0 {
		return "", nil
	}
	return list[0].ID, nil
}

// Inspect is ContainerInspect for managed containers only.
func (g *Guard) Inspect(ctx context.Context, id string) (container.InspectResponse, error) {
	return g.managed(ctx, id)
}

// Check inspects a managed container and verifies it against want: the
// policy, and every setting want makes.
func (g *Guard) Check(ctx context.Context, id string, want Spec) error {
	info, err := g.managed(ctx, id)
	if err != nil {
		return err
	}
	return verify(info, want, *g.roots.Load())
}

// Start starts a managed container, once the engine's account of it has
// passed the guard against want.
func (g *Guard) Start(ctx context.Context, id string, want Spec) error {
	if err := g.Check(ctx, id, want); err != nil {
		return fmt.Errorf("the policy guard did not start the container: %w", err)
	}
	err := g.call(ctx, g.callTimeout, "start the container", func(c context.Context) error {
		return g.cli.ContainerStart(c, id, container.StartOptions{})
	})
	if err != nil {
		return explainStartError(err)
	}
	return nil
}

// Stop stops a managed container: SIGTERM, then SIGKILL after grace.
func (g *Guard) Stop(ctx context.Context, id string, grace time.Duration) error {
	if _, err := g.managed(ctx, id); err != nil {
		return err
	}
	secs := int(grace / time.Second)
	return g.call(ctx, grace+stopExtra, "stop the container", func(c context.Context) error {
		return g.cli.ContainerStop(c, id, container.StopOptions{Timeout: &secs})
	})
}

// Remove removes a managed container, stopping it first.
func (g *Guard) Remove(ctx context.Context, id string) error {
	if _, err := g.managed(ctx, id); err != nil {
		return err
	}
	return g.call(ctx, g.callTimeout, "remove the container", func(c context.Context) error {
		return g.cli.ContainerRemove(c, id, container.RemoveOptions{Force: true})
	})
}

// Logs follows a managed container's output from since, until ctx ends or
// the container stops.
func (g *Guard) Logs(ctx context.Context, id string, since time.Time) (io.ReadCloser, error) {
	if _, err := g.managed(ctx, id); err != nil {
		return nil, err
	}
	// The follow stream lasts as long as the container runs and its caller
	// ends it with ctx; only opening it is bounded like any call.
	follow, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(g.callTimeout, cancel)
	rc, err := g.cli.ContainerLogs(follow, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Since: strconv.FormatInt(since.Unix(), 10)})
	if !timer.Stop() {
		if err == nil {
			rc.Close()
		}
		return nil, fmt.Errorf("follow the container's logs: the Docker engine at %s did not answer within %s", g.endpoint, g.callTimeout)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return &cancelOnClose{ReadCloser: rc, cancel: cancel}, nil
}

// cancelOnClose ends a stream's context when the stream is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// Deaths reports the "die" events of a managed container until ctx ends;
// the caller must end ctx, or the engine subscription stays open.
func (g *Guard) Deaths(ctx context.Context, id string) (<-chan events.Message, <-chan error) {
	return g.cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("container", id),
		filters.Arg("label", LabelManaged+"=true"),
		filters.Arg("event", string(events.ActionDie)),
	)})
}
