package docker

import (
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"

	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

var roots = []string{"/home/u/.fungi/data"}

func goodSpec() Spec {
	return Spec{
		Node:    "12D3KooWabc",
		Service: "web",
		Image:   "example/web:1",
		Env:     map[string]string{"A": "1"},
		Ports:   []runtimes.PortBinding{{Name: "http", ServicePort: 80, HostPort: 40000}},
		Mounts:  []manifest.ResolvedMount{{HostPath: "/home/u/.fungi/data/web/srv", RuntimePath: "/srv"}},
	}
}

func TestBuiltSpecPassesAndIsConfined(t *testing.T) {
	cfg, hc := build(goodSpec())
	if err := checkPolicy(cfg, hc, roots); err != nil {
		t.Fatal(err)
	}
	if cfg.Labels[LabelManaged] != "true" || cfg.Labels[LabelService] != "web" {
		t.Fatalf("labels %v", cfg.Labels)
	}
	b := hc.PortBindings[nat.Port("80/tcp")]
	if len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != "40000" {
		t.Fatalf("port bindings %v", hc.PortBindings)
	}
	if hc.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Fatalf("engine restart policy %v", hc.RestartPolicy)
	}
}

// Each thing a manifest cannot ask for is refused, with its name.
func TestGuardDenials(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*container.Config, *container.HostConfig)
		want   string
	}{
		{"privileged", func(_ *container.Config, h *container.HostConfig) { h.Privileged = true }, "privileged mode"},
		{"host network", func(_ *container.Config, h *container.HostConfig) { h.NetworkMode = "host" }, "the host network"},
		{"host pid", func(_ *container.Config, h *container.HostConfig) { h.PidMode = "host" }, "the host PID namespace"},
		{"host ipc", func(_ *container.Config, h *container.HostConfig) { h.IpcMode = "host" }, "the host IPC namespace"},
		{"another container's network", func(_ *container.Config, h *container.HostConfig) { h.NetworkMode = "container:other" }, "another container's network"},
		{"another container's pid", func(_ *container.Config, h *container.HostConfig) { h.PidMode = "container:other" }, "another container's PID namespace"},
		{"another container's ipc", func(_ *container.Config, h *container.HostConfig) { h.IpcMode = "container:other" }, "another container's IPC namespace"},
		{"host cgroup", func(_ *container.Config, h *container.HostConfig) { h.CgroupnsMode = "host" }, "the host cgroup namespace"},
		{"host uts", func(_ *container.Config, h *container.HostConfig) { h.UTSMode = "host" }, "the host UTS namespace"},
		{"devices", func(_ *container.Config, h *container.HostConfig) {
			h.Devices = []container.DeviceMapping{{PathOnHost: "/dev/sda"}}
		}, "devices"},
		{"gpus", func(_ *container.Config, h *container.HostConfig) {
			h.DeviceRequests = []container.DeviceRequest{{Count: -1}}
		}, "devices"},
		{"cap add", func(_ *container.Config, h *container.HostConfig) { h.CapAdd = []string{"SYS_ADMIN"} }, "added capabilities"},
		{"security opt", func(_ *container.Config, h *container.HostConfig) { h.SecurityOpt = []string{"seccomp=unconfined"} }, "security options"},
		{"sysctls", func(_ *container.Config, h *container.HostConfig) {
			h.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
		}, "sysctls"},
		{"binds", func(_ *container.Config, h *container.HostConfig) { h.Binds = []string{"/:/host"} }, "binds other than the manifest's mounts"},
		{"volumes from", func(_ *container.Config, h *container.HostConfig) { h.VolumesFrom = []string{"other"} }, "binds other than"},
		{"engine restart", func(_ *container.Config, h *container.HostConfig) {
			h.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyAlways}
		}, "an engine restart policy"},
		{"publish all", func(_ *container.Config, h *container.HostConfig) { h.PublishAllPorts = true }, "publishing every port"},
		{"port on all interfaces", func(_ *container.Config, h *container.HostConfig) {
			h.PortBindings[nat.Port("80/tcp")] = []nat.PortBinding{{HostIP: "0.0.0.0", HostPort: "40000"}}
		}, `port 80/tcp published on "0.0.0.0" instead of 127.0.0.1`},
		{"port without address", func(_ *container.Config, h *container.HostConfig) {
			h.PortBindings[nat.Port("80/tcp")] = []nat.PortBinding{{HostPort: "40000"}}
		}, `published on "" instead of 127.0.0.1`},
		{"bind outside data", func(_ *container.Config, h *container.HostConfig) {
			h.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: "/etc", Target: "/etc"}}
		}, "a bind of /etc, outside the services' data folders"},
		{"bind with dot-dot", func(_ *container.Config, h *container.HostConfig) {
			h.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: "/home/u/.fungi/data/../../.ssh", Target: "/x"}}
		}, "outside the services' data folders"},
		{"volume mount", func(_ *container.Config, h *container.HostConfig) {
			h.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: "vol", Target: "/x"}}
		}, "a volume mount"},
		{"docker socket", func(_ *container.Config, h *container.HostConfig) {
			h.Mounts = []mount.Mount{{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
		}, "a bind of /var/run/docker.sock"},
		{"labels stripped", func(c *container.Config, _ *container.HostConfig) { delete(c.Labels, LabelManaged) }, "the fungi labels are missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, hc := build(goodSpec())
			tc.modify(cfg, hc)
			err := checkPolicy(cfg, hc, roots)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a refusal naming %q", err, tc.want)
			}
		})
	}
}

// Any spec a manifest can produce passes the guard: random services,
// images, env, commands, ports and mounts under the data root.
func TestAnyManifestSpecPasses(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 500; i++ {
		spec := Spec{Service: fmt.Sprintf("svc-%d", i), Image: fmt.Sprintf("repo/img:%d", i), Env: map[string]string{}}
		for j := 0; j < r.Intn(5); j++ {
			spec.Env[fmt.Sprintf("K%d", j)] = fmt.Sprint(r.Int())
		}
		for j := 0; j < r.Intn(4); j++ {
			spec.Command = append(spec.Command, fmt.Sprint(r.Int()))
		}
		for j := 0; j < r.Intn(4); j++ {
			spec.Ports = append(spec.Ports, runtimes.PortBinding{Name: fmt.Sprint("p", j), ServicePort: 1 + r.Intn(65535), HostPort: 1 + r.Intn(65535)})
		}
		for j := 0; j < r.Intn(3); j++ {
			spec.Mounts = append(spec.Mounts, manifest.ResolvedMount{HostPath: fmt.Sprintf("/home/u/.fungi/data/svc-%d/d%d", i, j), RuntimePath: fmt.Sprintf("/m%d", j)})
		}
		cfg, hc := build(spec)
		if err := checkPolicy(cfg, hc, roots); err != nil {
			t.Fatalf("spec %d refused: %v", i, err)
		}
	}
}

// inspected is what the engine reports for a container the guard made
// from spec, as far as verify reads it.
func inspected(spec Spec) container.InspectResponse {
	cfg, hc := build(spec)
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{Name: "/" + ContainerName(spec.Node, spec.Service), Image: spec.ImageID, HostConfig: hc},
		Config:            cfg,
	}
}

// verify accepts the container a spec makes and names what differs in one
// that another spec made; a container altered after it was made fails the
// policy.
func TestVerifyNamesWhatDiffers(t *testing.T) {
	want := goodSpec()
	want.ImageID = "sha256:" + strings.Repeat("a", 64)
	if err := verify(inspected(want), want, roots); err != nil {
		t.Fatalf("the container the spec makes: %v", err)
	}
	tests := []struct {
		name   string
		modify func(*Spec)
		want   string
	}{
		{"env", func(s *Spec) { s.Env = map[string]string{"A": "2"} }, "its environment"},
		{"command", func(s *Spec) { s.Command = []string{"serve"} }, "its configuration hash"},
		{"mount removed", func(s *Spec) { s.Mounts = nil }, "its mounts"},
		{"port", func(s *Spec) { s.Ports[0].HostPort = 40001 }, "its published ports"},
		{"image", func(s *Spec) { s.ImageID = "sha256:" + strings.Repeat("b", 64) }, "its image bbbbbbbbbbbb (the manifest's example/web:1 is aaaaaaaaaaaa)"},
		{"service", func(s *Spec) { s.Service = "other" }, "its service or node label"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			made := goodSpec()
			made.ImageID = want.ImageID
			tc.modify(&made)
			err := verify(inspected(made), want, roots)
			var mismatch *MismatchError
			if !errors.As(err, &mismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a mismatch naming %q", err, tc.want)
			}
		})
	}
	altered := inspected(want)
	altered.HostConfig.Privileged = true
	if err := verify(altered, want, roots); err == nil || !strings.Contains(err.Error(), "privileged mode") {
		t.Fatalf("a container made privileged after the fact: got %v", err)
	}
}
