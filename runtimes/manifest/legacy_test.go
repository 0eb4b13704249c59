package manifest

import (
	"strings"
	"testing"
)

func TestConvertLegacyMapsEveryKnownField(t *testing.T) {
	in := `---
fungi: service/v1
id: notes
run:
  provider: docker
  source:
    image: example.org/notes@sha256:` + strings.Repeat("a", 64) + `
  args: [--listen, "0.0.0.0:8080"]
  env:
    NOTES_ROOT: /data
  mounts:
    - from: $fungi.service.data
      to: /data
publish:
  http:
    tcp:
      port: 8080
    client:
      kind: web
      path: /app
---

# Notes
`
	if !IsLegacy([]byte(in)) {
		t.Fatal("a service/v1 file with front matter is not recognised")
	}
	out, err := ConvertLegacy([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(out)
	if err != nil {
		t.Fatalf("the converted manifest does not parse: %v\n%s", err, out)
	}
	s := m.Spec
	if m.Metadata.Name != "notes" || s.Runtime != RuntimeDocker || !strings.HasPrefix(s.Source.Image, "example.org/notes@sha256:") {
		t.Fatalf("name/runtime/image: %+v", m)
	}
	if len(s.Ports) != 1 || s.Ports[0].Name != "http" || s.Ports[0].ServicePort != 8080 || !s.Ports[0].HostPort.Auto {
		t.Fatalf("ports: %+v", s.Ports)
	}
	if s.Expose.Usage.Kind != "web" || s.Expose.Usage.Path != "/app" || !s.Expose.Enabled {
		t.Fatalf("expose: %+v", s.Expose)
	}
	if len(s.Mounts) != 1 || s.Mounts[0].HostPath != "${APP_HOME}" || s.Mounts[0].RuntimePath != "/data" {
		t.Fatalf("mounts: %+v", s.Mounts)
	}
	if strings.Join(s.Command, " ") != "--listen 0.0.0.0:8080" || s.Env["NOTES_ROOT"] != "/data" {
		t.Fatalf("command/env: %v %v", s.Command, s.Env)
	}
}

func TestConvertLegacyExistingTCPService(t *testing.T) {
	out, err := ConvertLegacy([]byte("fungi: service/v1\nid: ssh\npublish:\n  ssh:\n    tcp: {host: 127.0.0.1, port: 22}\n    client: {kind: ssh}\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if m.Spec.Runtime != RuntimeExternal || m.Spec.Source.Host != "127.0.0.1" || m.Spec.Ports[0].ServicePort != 22 {
		t.Fatalf("%+v", m.Spec)
	}
}

func TestConvertLegacyRefusesByName(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"unknown field", "fungi: service/v1\nid: x\nrun:\n  provider: wasmtime\n  workingDir: /tmp\n  source: {file: x.wasm}\npublish:\n  http: {tcp: {port: 80}}\n",
			"line 5 column 3: run.workingDir has no meaning on this node"},
		{"front matter lines count", "---\nfungi: service/v1\nid: x\nhealth: {}\npublish:\n  a: {tcp: {port: 1}}\n---\n",
			"line 4 column 1: health has no meaning on this node"},
		{"workspace mount", "fungi: service/v1\nid: x\nrun:\n  provider: docker\n  source: {image: a@sha256:" + strings.Repeat("b", 64) + "}\n  mounts: [{from: $fungi.workspace, to: /w}]\npublish:\n  http: {tcp: {port: 80}}\n",
			"run.mounts[0].from: $fungi.workspace has no counterpart here"},
		{"unknown client kind", "fungi: service/v1\nid: x\npublish:\n  p: {tcp: {port: 1080}, client: {kind: socks5}}\n",
			`publish.p.client.kind "socks5" has no counterpart here`},
		{"no id", "fungi: service/v1\npublish:\n  p: {tcp: {port: 1}}\n", "id is required"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ConvertLegacy([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
