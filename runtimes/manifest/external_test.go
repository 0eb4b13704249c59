package manifest

import (
	"strings"
	"testing"
)

const externalSSH = `apiVersion: fungi.dev/v1alpha1
kind: ServiceManifest
metadata: {name: ssh}
spec:
  runtime: external
  expose: {enabled: true, usage: {kind: ssh}}
  source: {host: 127.0.0.1}
  ports: [{name: ssh, servicePort: 22}]
`

func TestExternalManifest(t *testing.T) {
	m, err := Parse([]byte(externalSSH))
	if err != nil {
		t.Fatal(err)
	}
	if m.Spec.Runtime != RuntimeExternal || m.Spec.Source.Host != "127.0.0.1" || m.Spec.Ports[0].ServicePort != 22 {
		t.Fatalf("decoded %+v", m.Spec)
	}
	if m.Spec.Restart != RestartAlways {
		t.Errorf("restart defaults to %q for an external service; want always, so a target that comes back is published again", m.Spec.Restart)
	}
	if m.Spec.Expose.Usage.Kind != "ssh" {
		t.Errorf("usage %q", m.Spec.Expose.Usage.Kind)
	}
}

func TestExternalManifestRefusals(t *testing.T) {
	for _, tc := range []struct{ name, edit, want string }{
		{"fetches nothing", "  source: {host: 127.0.0.1, image: x}", "spec.source.image: an external service runs already"},
		{"needs a service port", "  ports: [{name: ssh}]", "spec.ports[0].servicePort: is required for an external service"},
		{"opens no host port", "  ports: [{name: ssh, servicePort: 22, hostPort: 2222}]", "spec.ports[0].hostPort: does not apply to an external service"},
		{"is a host, not a URL", "  source: {host: \"http://nas/\"}", "spec.source.host: \"http://nas/\" is not a host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := externalSSH
			switch {
			case strings.HasPrefix(tc.edit, "  source:"):
				text = strings.Replace(text, "  source: {host: 127.0.0.1}", tc.edit, 1)
			case strings.HasPrefix(tc.edit, "  ports:"):
				text = strings.Replace(text, "  ports: [{name: ssh, servicePort: 22}]", tc.edit, 1)
			}
			_, err := Parse([]byte(text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Errorf("the error has no line and column: %v", err)
			}
		})
	}
	wasm := strings.Replace(good, "    file: ../wasm/filebrowser-lite.wasm", "    file: ../wasm/filebrowser-lite.wasm\n    host: 127.0.0.1", 1)
	if _, err := Parse([]byte(wasm)); err == nil || !strings.Contains(err.Error(), "spec.source.host: is for runtime: external") {
		t.Fatalf("a wasm manifest naming source.host: %v", err)
	}
}

func TestExternalWritesAValidManifest(t *testing.T) {
	raw, err := External(ExternalOptions{Name: "nas", Host: "192.168.1.30", Port: 8080, DisplayName: "My NAS"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(raw)
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if m.Spec.Runtime != RuntimeExternal || m.Spec.Source.Host != "192.168.1.30" || m.Spec.Ports[0].ServicePort != 8080 ||
		m.Spec.Expose.Usage.Kind != "web" || m.Spec.Expose.DisplayName != "My NAS" || !m.Spec.Expose.Enabled {
		t.Fatalf("wrote\n%s\ndecoded %+v", raw, m.Spec)
	}
	ssh, err := External(ExternalOptions{Name: "ssh", Port: 22})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := Parse(ssh); m.Spec.Expose.Usage.Kind != "ssh" || m.Spec.Ports[0].Name != "ssh" {
		t.Fatalf("port 22 is not published as ssh:\n%s", ssh)
	}
	if _, err := External(ExternalOptions{Name: "Bad Name", Port: 22}); err == nil || !strings.Contains(err.Error(), "metadata.name") {
		t.Fatalf("a bad name: %v", err)
	}
	if _, err := External(ExternalOptions{Name: "x", Port: 70000}); err == nil {
		t.Fatal("port 70000 was accepted")
	}
}

func TestAllowOutboundHTTP(t *testing.T) {
	m, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if m.Spec.AllowOutboundHTTP.Enabled() {
		t.Fatal("outbound HTTP is allowed by default")
	}
	m, err = Parse([]byte(good + "  allowOutboundHttp: true\n"))
	if err != nil || !m.Spec.AllowOutboundHTTP.Internet || len(m.Spec.AllowOutboundHTTP.Allow) != 0 {
		t.Fatalf("allowOutboundHttp: true gave %v, %v", m, err)
	}
	_, err = Parse([]byte(externalSSH + "  allowOutboundHttp: true\n"))
	if err == nil || !strings.Contains(err.Error(), "spec.allowOutboundHttp: is for wasmtime services") {
		t.Fatalf("allowOutboundHttp on an external service: %v", err)
	}
}
