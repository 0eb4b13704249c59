package docker

import (
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
