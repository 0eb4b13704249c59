package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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
)

// Spec is all a manifest can say about a container. There is no field for
// anything else, so nothing else can reach the engine.
type Spec struct {
	Node    string
	Service string
	Image   string
	Env     map[string]string
	Command []string
	Ports   []runtimes.PortBinding
	Mounts  []manifest.ResolvedMount
}

// ErrNotManaged is the refusal to touch a container fungi did not make.
var ErrNotManaged = errors.New("not managed by fungi")

// Guard is the policy guard: the only code that builds container specs and
// calls the engine's container API. Every container it creates passes
// checkPolicy; every operation on an existing container checks its label.
type Guard struct {
	cli *client.Client
	// roots are the folders binds may come from: the services' data root
	// and the folders the node's owner allowed.
	roots []string
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

// build turns a Spec into the engine's container configuration.
func build(spec Spec) (*container.Config, *container.HostConfig) {
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
	}
	for _, p := range spec.Ports {
		port := nat.Port(strconv.Itoa(p.ServicePort) + "/tcp")
		cfg.ExposedPorts[port] = struct{}{}
		hc.PortBindings[port] = append(hc.PortBindings[port], nat.PortBinding{HostIP: "127.0.0.1", HostPort: strconv.Itoa(p.HostPort)})
	}
	for _, m := range spec.Mounts {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.HostPath, Target: m.RuntimePath})
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

// Create makes the service's container from spec.
func (g *Guard) Create(ctx context.Context, spec Spec) (string, error) {
	cfg, hc := build(spec)
	if err := checkPolicy(cfg, hc, g.roots); err != nil {
		return "", err
	}
	name := ContainerName(spec.Node, spec.Service)
	resp, err := g.cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
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
	info, err := g.cli.ContainerInspect(ctx, id)
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
	list, err := g.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelManaged+"=true"),
		filters.Arg("label", LabelService+"="+service),
		filters.Arg("label", LabelNode+"="+node),
	)})
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

// Start starts a managed container.
func (g *Guard) Start(ctx context.Context, id string) error {
	if _, err := g.managed(ctx, id); err != nil {
		return err
	}
	return g.cli.ContainerStart(ctx, id, container.StartOptions{})
}

// Stop stops a managed container: SIGTERM, then SIGKILL after grace.
func (g *Guard) Stop(ctx context.Context, id string, grace time.Duration) error {
	if _, err := g.managed(ctx, id); err != nil {
		return err
	}
	secs := int(grace / time.Second)
	return g.cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &secs})
}

// Remove removes a managed container, stopping it first.
func (g *Guard) Remove(ctx context.Context, id string) error {
	if _, err := g.managed(ctx, id); err != nil {
		return err
	}
	return g.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
}

// Logs follows a managed container's output from since.
func (g *Guard) Logs(ctx context.Context, id string, since time.Time) (io.ReadCloser, error) {
	if _, err := g.managed(ctx, id); err != nil {
		return nil, err
	}
	return g.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Since: strconv.FormatInt(since.Unix(), 10)})
}

// Deaths reports the "die" events of a managed container.
func (g *Guard) Deaths(ctx context.Context, id string) (<-chan events.Message, <-chan error) {
	return g.cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("container", id),
		filters.Arg("label", LabelManaged+"=true"),
		filters.Arg("event", string(events.ActionDie)),
	)})
}
