package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const good = `apiVersion: fungi.dev/v1alpha1
kind: ServiceManifest
metadata:
  name: filebrowser-lite-wasi
spec:
  runtime: wasmtime
  expose:
    enabled: true
    serviceId: filebrowser-lite-wasi
    displayName: File Browser Lite
    transport:
      kind: tcp
    usage:
      kind: web
      path: /
  source:
    file: ../wasm/filebrowser-lite.wasm
  ports:
    - hostPort: auto
      name: http
      protocol: tcp
  mounts:
    - hostPath: ${APP_HOME}/data
      runtimePath: /data
  env:
    FILEBROWSER_ROOT: /data
`

func TestParseGood(t *testing.T) {
	m, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if m.Metadata.Name != "filebrowser-lite-wasi" || m.Spec.Runtime != RuntimeWasmtime {
		t.Fatalf("decoded %+v", m)
	}
	if !m.Spec.Ports[0].HostPort.Auto || m.Spec.Ports[0].Name != "http" {
		t.Fatalf("port %+v", m.Spec.Ports[0])
	}
	if m.Spec.Restart != RestartOnFailure {
		t.Fatalf("default restart = %q, want on-failure", m.Spec.Restart)
	}
	if m.Spec.Env["FILEBROWSER_ROOT"] != "/data" {
		t.Fatalf("env %v", m.Spec.Env)
	}
}

func TestParseExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/service-manifests/*.yaml")
	if len(files) < 2 {
		t.Fatalf("expected the example manifests, found %v", files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestRuntimeAlias(t *testing.T) {
	m, err := Parse([]byte(strings.Replace(good, "runtime: wasmtime", "runtime: wasm", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if m.Spec.Runtime != RuntimeWasmtime {
		t.Fatalf("runtime %q, want wasmtime", m.Spec.Runtime)
	}
}

// edit returns the good manifest with one text replaced.
func edit(old, new string) string {
	if !strings.Contains(good, old) {
		panic("test manifest lacks " + old)
	}
	return strings.Replace(good, old, new, 1)
}

func TestBadManifests(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "line 1, column 1: the manifest is empty"},
		{"not yaml", "apiVersion: [unclosed\n", "not valid YAML"},
		{"unknown top field", good + "extra: 1\n", `line 27, column 1: extra: unknown field (known fields here: apiVersion, kind, metadata, spec)`},
		{"unknown nested field", edit("    enabled: true\n", "    enabled: true\n    colour: red\n"), `line 9, column 5: spec.expose.colour: unknown field`},
		{"typo in port field", edit("      protocol: tcp\n", "      protocl: tcp\n"), `line 21, column 7: spec.ports[0].protocl: unknown field`},
		{"wrong api version", edit("fungi.dev/v1alpha1", "fungi.dev/v2"), `line 1, column 13: apiVersion: must be fungi.dev/v1alpha1, found "fungi.dev/v2"`},
		{"wrong kind", edit("kind: ServiceManifest", "kind: Deployment"), `line 2, column 7: kind: must be ServiceManifest, found "Deployment"`},
		{"missing name", edit("  name: filebrowser-lite-wasi\n", "  name: \"\"\n"), `metadata.name: is required`},
		{"bad name", edit("name: filebrowser-lite-wasi", "name: File_Browser"), `line 4, column 9: metadata.name: "File_Browser" is not a valid name`},
		{"long name", edit("name: filebrowser-lite-wasi", "name: "+strings.Repeat("a", 64)), `is 64 characters; the service name may have at most 63`},
		{"unknown runtime", edit("runtime: wasmtime", "runtime: podman"), `line 6, column 12: spec.runtime: unknown runtime "podman": use docker, wasmtime (alias wasm) or external`},
		{"enabled not bool", edit("enabled: true", "enabled: yes please"), `line 8, column 14: spec.expose.enabled: must be true or false, found the text "yes please"`},
		{"host port text", edit("hostPort: auto", "hostPort: any"), `line 19, column 17: spec.ports[0].hostPort: must be auto or a port from 1 to 65535, found the text "any"`},
		{"host port range", edit("hostPort: auto", "hostPort: 70000"), `spec.ports[0].hostPort: must be auto or a port from 1 to 65535, found 70000`},
		{"service port text", edit("      protocol: tcp\n", "      protocol: tcp\n      servicePort: \"80\"\n"), `spec.ports[0].servicePort: must be a whole number, found the text "80"`},
		{"udp", edit("protocol: tcp\n  mounts", "protocol: udp\n  mounts"), `spec.ports[0].protocol: udp is not supported yet; use tcp`},
		{"duplicate port names", edit("  mounts:\n", "    - name: http\n      hostPort: 8080\n  mounts:\n"), `spec.ports[1].name: port name "http" is used twice`},
		{"exposed without named port", edit("      name: http\n", ""), `spec.expose.enabled: ` + ExposeRuleText},
		{"no source", edit("    file: ../wasm/filebrowser-lite.wasm\n", "    sha256: \"\"\n"), `spec.source: needs one of image (docker), url or file (wasmtime)`},
		{"two sources", edit("    file: ../wasm/filebrowser-lite.wasm\n", "    file: a.wasm\n    url: https://example.org/a.wasm\n"), `spec.source: names more than one of image, url and file`},
		{"image for wasm", edit("    file: ../wasm/filebrowser-lite.wasm\n", "    image: nginx\n"), `spec.source.image: a wasmtime service needs source.url or source.file`},
		{"ftp url", edit("    file: ../wasm/filebrowser-lite.wasm\n", "    url: ftp://example.org/a.wasm\n"), `spec.source.url: "ftp://example.org/a.wasm" is not an http:// or https:// URL`},
		{"bad sha", edit("    file: ../wasm/filebrowser-lite.wasm\n", "    file: a.wasm\n    sha256: abc\n"), `spec.source.sha256: must be 64 hexadecimal characters`},
		{"mount escapes", edit("${APP_HOME}/data", "${APP_HOME}/../other"), `line 23, column 17: spec.mounts[0].hostPath: "${APP_HOME}/../other" leaves the service's data folder`},
		{"mount relative", edit("${APP_HOME}/data", "data"), `spec.mounts[0].hostPath: "data" must start with ${APP_HOME}`},
		{"runtime path relative", edit("runtimePath: /data", "runtimePath: data"), `spec.mounts[0].runtimePath: must be an absolute path, found "data"`},
		{"env not scalar", edit("FILEBROWSER_ROOT: /data", "FILEBROWSER_ROOT: [a, b]"), `spec.env.FILEBROWSER_ROOT: must be a single value, found a list`},
		{"bad restart", edit("  env:\n", "  restart: sometimes\n  env:\n"), `spec.restart: must be always, on-failure or never, found "sometimes"`},
		{"ports not list", edit("  ports:\n    - hostPort: auto\n      name: http\n      protocol: tcp\n", "  ports: http\n"), `spec.ports: must be a list, found the text "http"`},
		{"docker without service port", strings.Replace(edit("    file: ../wasm/filebrowser-lite.wasm\n", "    image: filebrowser/filebrowser:latest\n"), "runtime: wasmtime", "runtime: docker", 1), `spec.ports[0].servicePort: is required for a docker service`},
		{"usage kind", edit("kind: web", "kind: gopher"), `spec.expose.usage.kind: must be web, ssh, tcp or raw, found "gopher"`},
		{"duplicate key", edit("  runtime: wasmtime\n", "  runtime: wasmtime\n  runtime: docker\n"), `line 7, column 3: spec.runtime: appears twice`},
	}
	if len(tests) < 15 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted a bad manifest; want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tc.want)
			}
		})
	}
}

func TestResolveMountsRefusesSymlinkOut(t *testing.T) {
	dir := t.TempDir()
	appHome := filepath.Join(dir, "data", "svc")
	outside := filepath.Join(dir, "secret")
	if err := os.MkdirAll(appHome, 0o755); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(outside, 0o755)
	if err := os.Symlink(outside, filepath.Join(appHome, "data")); err != nil {
		t.Fatal(err)
	}
	m, err := Parse([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.ResolveMounts(appHome, nil)
	if err == nil || !strings.Contains(err.Error(), "is a link to "+outside) {
		t.Fatalf("want a refusal naming the link target, got %v", err)
	}
	// The same folder is fine once the owner allows it.
	if _, err := m.ResolveMounts(appHome, []string{outside}); err != nil {
		t.Fatalf("allowed folder refused: %v", err)
	}
}
