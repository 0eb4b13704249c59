package manifest

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ExposeRuleText is the seed's own sentence for an exposed service without a
// named tcp port.
const ExposeRuleText = "spec.expose.enabled=true with TCP transport requires at least one named TCP port in spec.ports[].name"

// at returns the node recorded for path, or for its nearest recorded parent.
func (d *decoder) at(path string) *yaml.Node {
	for p := path; ; {
		if n, ok := d.positions[p]; ok && n != nil {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			if n, ok := d.positions[""]; ok {
				return n
			}
			return &yaml.Node{Line: 1, Column: 1}
		}
		p = p[:i]
	}
}

func (d *decoder) bad(path, format string, args ...any) {
	d.fail(d.at(path), path, format, args...)
}

func (d *decoder) validate(m *Manifest) {
	if m.APIVersion != APIVersion {
		d.bad("apiVersion", "must be %s, found %q", APIVersion, m.APIVersion)
	}
	if m.Kind != Kind {
		d.bad("kind", "must be %s, found %q", Kind, m.Kind)
	}
	d.checkName("metadata.name", m.Metadata.Name, "the service name")
	if _, ok := d.positions["spec"]; !ok {
		d.bad("spec", "is required: it says what to run (runtime, source, ports)")
		return
	}
	s := &m.Spec
	switch s.Runtime {
	case RuntimeDocker, RuntimeWasmtime, RuntimeExternal:
	case "wasm":
		s.Runtime = RuntimeWasmtime
	case "":
		d.bad("spec.runtime", "is required: docker, wasmtime or external")
	default:
		d.bad("spec.runtime", "unknown runtime %q: use docker, wasmtime (alias wasm) or external", s.Runtime)
	}
	if s.Runtime == RuntimeExternal {
		d.validateExternal(s)
	}
	d.validateSource(s)
	d.validatePorts(s)
	d.validateExpose(m)
	d.validateMounts(s)
	d.validateNetwork(s)
	d.validateStdin(s)
	if s.AllowOutboundHTTP.Enabled() && s.Runtime != RuntimeWasmtime {
		d.bad("spec.allowOutboundHttp", "is for wasmtime services (components' wasi:http/outgoing-handler); a %s service's network is its runtime's", s.Runtime)
	}
	switch s.Restart {
	case "":
		s.Restart = RestartOnFailure
		if s.Runtime == RuntimeExternal {
			// A target that went away is probed again until it is back.
			s.Restart = RestartAlways
		}
	case RestartAlways, RestartOnFailure, RestartNever:
	default:
		d.bad("spec.restart", "must be always, on-failure or never, found %q", s.Restart)
	}
}

func (d *decoder) checkName(path, name, what string) {
	switch {
	case name == "":
		d.bad(path, "is required: %s, lower-case letters, digits and hyphens", what)
	case len(name) > 63:
		d.bad(path, "%q is %d characters; %s may have at most 63", name, len(name), what)
	case !nameRE.MatchString(name):
		d.bad(path, "%q is not a valid name: use lower-case letters, digits and hyphens, starting and ending with a letter or digit", name)
	}
}

func (d *decoder) validateSource(s *Spec) {
	src := s.Source
	if s.Runtime == RuntimeExternal {
		return // validateExternal
	}
	if src.Host != "" {
		d.bad("spec.source.host", "is for runtime: external (a service that already runs); a %s service runs from image, url or file", s.Runtime)
	}
	set := 0
	for _, v := range []string{src.Image, src.URL, src.File} {
		if v != "" {
			set++
		}
	}
	if set == 0 {
		d.bad("spec.source", "needs one of image (docker), url or file (wasmtime)")
		return
	}
	if set > 1 {
		d.bad("spec.source", "names more than one of image, url and file; keep one")
		return
	}
	switch s.Runtime {
	case RuntimeDocker:
		if src.Image == "" {
			d.bad("spec.source", "a docker service needs source.image")
		}
		if src.SHA256 != "" {
			d.bad("spec.source.sha256", "is for url and file sources; pin an image with image@sha256:<digest>")
		}
	case RuntimeWasmtime:
		if src.Image != "" {
			d.bad("spec.source.image", "a wasmtime service needs source.url or source.file, not an image")
		}
	}
	if src.URL != "" {
		u, err := url.Parse(src.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.bad("spec.source.url", "%q is not an http:// or https:// URL", src.URL)
		}
	}
	if src.SHA256 != "" {
		if b, err := hex.DecodeString(src.SHA256); err != nil || len(b) != 32 {
			d.bad("spec.source.sha256", "must be 64 hexadecimal characters")
		}
	}
}

func (d *decoder) validatePorts(s *Spec) {
	names := map[string]bool{}
	hostPorts := map[int]bool{}
	for i := range s.Ports {
		p := &s.Ports[i]
		at := fmt.Sprintf("spec.ports[%d]", i)
		if _, set := d.positions[at+".hostPort"]; !set {
			p.HostPort.Auto = true
		}
		if p.Name != "" {
			d.checkName(at+".name", p.Name, "a port name")
			if names[p.Name] {
				d.bad(at+".name", "port name %q is used twice", p.Name)
			}
			names[p.Name] = true
		}
		switch p.Protocol {
		case "":
			p.Protocol = "tcp"
		case "tcp":
		case "udp":
			d.bad(at+".protocol", "udp is not supported yet; use tcp")
		default:
			d.bad(at+".protocol", "must be tcp, found %q", p.Protocol)
		}
		if p.ServicePort < 0 || p.ServicePort > 65535 {
			d.bad(at+".servicePort", "must be a port from 1 to 65535, found %d", p.ServicePort)
		}
		if s.Runtime == RuntimeDocker && p.ServicePort == 0 {
			d.bad(at+".servicePort", "is required for a docker service: the port the container listens on")
		}
		if s.Runtime == RuntimeExternal {
			if p.ServicePort == 0 {
				d.bad(at+".servicePort", "is required for an external service: the port the existing service listens on (e.g. 22 for sshd)")
			}
			if _, set := d.positions[at+".hostPort"]; set && !p.HostPort.Auto {
				d.bad(at+".hostPort", "does not apply to an external service: fungi opens no port of its own; peers reach servicePort through access")
			}
			continue
		}
		if !p.HostPort.Auto {
			if hostPorts[p.HostPort.Port] {
				d.bad(at+".hostPort", "host port %d is used twice", p.HostPort.Port)
			}
			hostPorts[p.HostPort.Port] = true
		}
	}
	if s.Runtime == RuntimeWasmtime && len(s.Ports) > 1 {
		d.bad("spec.ports", "a wasmtime service serves HTTP on exactly one port; found %d", len(s.Ports))
	}
}

// validateExternal checks what an external service may say: a target host
// and its ports, nothing to fetch or run.
func (d *decoder) validateExternal(s *Spec) {
	src := s.Source
	for _, f := range []struct{ field, value string }{{"image", src.Image}, {"url", src.URL}, {"file", src.File}, {"sha256", src.SHA256}} {
		if field, v := f.field, f.value; v != "" {
			d.bad("spec.source."+field, "an external service runs already: fungi fetches nothing; give source.host (default 127.0.0.1) and the ports")
		}
	}
	if h := src.Host; h != "" {
		if strings.ContainsAny(h, "/ \t@") || strings.Contains(h, "://") {
			d.bad("spec.source.host", "%q is not a host: give an IP address or a host name, e.g. 127.0.0.1 or nas.lan", h)
		}
	}
	if len(s.Ports) == 0 {
		d.bad("spec.ports", "an external service names at least one port: the port the existing service listens on, e.g. {name: ssh, servicePort: 22}")
	}
	if len(s.Mounts) > 0 {
		d.bad("spec.mounts", "an external service runs outside fungi: it has no mounts")
	}
	if len(s.Env) > 0 {
		d.bad("spec.env", "an external service runs outside fungi: env does not reach it")
	}
	if len(s.Command) > 0 {
		d.bad("spec.command", "an external service runs outside fungi: it has no command")
	}
}

func (d *decoder) validateExpose(m *Manifest) {
	e := &m.Spec.Expose
	if e.Transport.Kind == "" {
		e.Transport.Kind = "tcp"
	}
	if e.Transport.Kind != "tcp" {
		d.bad("spec.expose.transport.kind", "must be tcp, found %q", e.Transport.Kind)
	}
	switch e.Usage.Kind {
	case "":
		if e.Enabled {
			e.Usage.Kind = "tcp"
		}
	case "web", "ssh", "tcp", "raw":
	default:
		d.bad("spec.expose.usage.kind", "must be web, ssh, tcp or raw, found %q", e.Usage.Kind)
	}
	if e.Usage.Kind == "web" && e.Usage.Path == "" {
		e.Usage.Path = "/"
	}
	if e.Usage.Path != "" && !strings.HasPrefix(e.Usage.Path, "/") {
		d.bad("spec.expose.usage.path", "must start with /, found %q", e.Usage.Path)
	}
	if e.ServiceID == "" {
		e.ServiceID = m.Metadata.Name
	} else {
		d.checkName("spec.expose.serviceId", e.ServiceID, "a service ID")
	}
	if e.DisplayName == "" {
		e.DisplayName = m.Metadata.Name
	}
	if e.Enabled && e.Transport.Kind == "tcp" {
		named := false
		for _, p := range m.Spec.Ports {
			if p.Name != "" && p.Protocol == "tcp" {
				named = true
			}
		}
		if !named {
			d.bad("spec.expose.enabled", "%s", ExposeRuleText)
		}
	}
}

func (d *decoder) validateMounts(s *Spec) {
	targets := map[string]bool{}
	for i, mt := range s.Mounts {
		at := fmt.Sprintf("spec.mounts[%d]", i)
		if mt.HostPath == "" {
			d.bad(at+".hostPath", "is required, e.g. \"${APP_HOME}/data\"")
		}
		if mt.RuntimePath == "" {
			d.bad(at+".runtimePath", "is required: where the service sees the folder")
		} else if !strings.HasPrefix(mt.RuntimePath, "/") {
			d.bad(at+".runtimePath", "must be an absolute path, found %q", mt.RuntimePath)
		} else {
			clean := path.Clean(mt.RuntimePath)
			if targets[clean] {
				d.bad(at+".runtimePath", "%q is mounted twice", clean)
			}
			targets[clean] = true
		}
		if rel, ok := strings.CutPrefix(mt.HostPath, AppHomeVar); ok {
			if escapes(rel) {
				d.bad(at+".hostPath", "%q leaves the service's data folder; keep it under ${APP_HOME}", mt.HostPath)
			}
		} else if mt.HostPath != "" && !strings.HasPrefix(mt.HostPath, "/") {
			d.bad(at+".hostPath", "%q must start with ${APP_HOME} or be an absolute path the node's owner allowed", mt.HostPath)
		} else if d.rules != nil && mt.HostPath != "" && !within(filepath.FromSlash(mt.HostPath), d.rules.AllowedMounts) {
			d.bad(at+".hostPath", "%q is outside the service's data folder and outside every folder this node allows (%s); use a path under ${APP_HOME}, or ask the node's owner to add the folder to mounts.allowed in config.yaml", mt.HostPath, allowedText(d.rules.AllowedMounts))
		}
	}
}

// validateStdin checks that spec.stdin names a file inside the service's
// data folder, for a wasm service: a container has its own stdin.
func (d *decoder) validateStdin(s *Spec) {
	if s.Stdin == "" {
		return
	}
	if s.Runtime != RuntimeWasmtime {
		d.bad("spec.stdin", "is for wasmtime services (a job's standard input); a %s service has none fungi feeds", s.Runtime)
		return
	}
	if _, err := StdinName(s.Stdin); err != nil {
		d.bad("spec.stdin", "%v", err)
	}
}

// StdinName is spec.stdin as a name relative to the service's data folder,
// for an os.Root opened on it: "input.txt" and "${APP_HOME}/input.txt" both
// name input.txt. A name that leaves the folder is an error.
func StdinName(stdin string) (string, error) {
	rel := stdin
	if rest, ok := strings.CutPrefix(stdin, AppHomeVar); ok {
		if !strings.HasPrefix(rest, "/") {
			return "", fmt.Errorf("%q: write ${APP_HOME}/name, or the file's name in the data folder", stdin)
		}
		rel = strings.TrimLeft(rest, "/")
	} else if strings.HasPrefix(stdin, "/") {
		return "", fmt.Errorf("%q is an absolute path; name a file in the service's data folder, e.g. input.txt or ${APP_HOME}/input.txt", stdin)
	}
	clean := path.Clean(rel)
	if rel == "" || clean == "." {
		return "", fmt.Errorf("%q names the data folder itself; name a file in it, e.g. input.txt", stdin)
	}
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("%q leaves the service's data folder; name a file in it", stdin)
	}
	return clean, nil
}

func allowedText(allowed []string) string {
	if len(allowed) == 0 {
		return "mounts.allowed is empty"
	}
	return "mounts.allowed: " + strings.Join(allowed, ", ")
}

// escapes reports whether rel, the rest of a host path after ${APP_HOME},
// names something outside the data folder.
func escapes(rel string) bool {
	if rel != "" && !strings.HasPrefix(rel, "/") {
		return true // "${APP_HOME}x" is a sibling folder, not a child
	}
	c := path.Clean("/app/" + rel)
	return c != "/app" && !strings.HasPrefix(c, "/app/")
}
