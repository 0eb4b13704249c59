package manifest

import (
	"strings"
	"testing"
)

const jobManifest = `apiVersion: fungi.dev/v1alpha1
kind: ServiceManifest
metadata:
  name: batch
spec:
  runtime: wasmtime
  source:
    file: batch.wasm
  stdin: STDIN
  mounts:
    - hostPath: ${APP_HOME}/in
      runtimePath: /in
      readOnly: true
    - hostPath: ${APP_HOME}/out
      runtimePath: /out
`

func TestJobStdinAndReadOnlyMount(t *testing.T) {
	for _, stdin := range []string{"input.txt", "${APP_HOME}/input.txt", "./input.txt"} {
		m, err := Parse([]byte(strings.Replace(jobManifest, "STDIN", stdin, 1)))
		if err != nil {
			t.Fatalf("stdin %s: %v", stdin, err)
		}
		if name, err := StdinName(m.Spec.Stdin); err != nil || name != "input.txt" {
			t.Errorf("stdin %s resolves to %q (%v), want input.txt", stdin, name, err)
		}
		if !m.Spec.Mounts[0].ReadOnly || m.Spec.Mounts[1].ReadOnly {
			t.Errorf("readOnly decoded as %v, %v; want true, false", m.Spec.Mounts[0].ReadOnly, m.Spec.Mounts[1].ReadOnly)
		}
	}
}

func TestJobStdinRefusals(t *testing.T) {
	for _, c := range []struct{ stdin, want string }{
		{"/etc/passwd", "line 9, column 10: spec.stdin: \"/etc/passwd\" is an absolute path"},
		{"../other/input.txt", "line 9, column 10: spec.stdin: \"../other/input.txt\" leaves the service's data folder"},
		{"${APP_HOME}/../x", "leaves the service's data folder"},
		{"${APP_HOME}x", "write ${APP_HOME}/name"},
		{"${APP_HOME}/", "names the data folder itself"},
		{"[a]", "line 9, column 10: spec.stdin: must be text, found a list"},
	} {
		_, err := Parse([]byte(strings.Replace(jobManifest, "STDIN", c.stdin, 1)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("stdin %s: error %v, want it to say %q", c.stdin, err, c.want)
		}
	}
	docker := strings.Replace(strings.Replace(jobManifest, "STDIN", "in.txt", 1), "runtime: wasmtime", "runtime: docker", 1)
	docker = strings.Replace(docker, "file: batch.wasm", "image: alpine", 1)
	if _, err := Parse([]byte(docker)); err == nil || !strings.Contains(err.Error(), "spec.stdin: is for wasmtime services") {
		t.Errorf("a docker service with stdin: %v, want it refused", err)
	}
	bad := strings.Replace(strings.Replace(jobManifest, "STDIN", "in.txt", 1), "readOnly: true", "readOnly: yes please", 1)
	if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line 13, column 17: spec.mounts[0].readOnly: must be true or false") {
		t.Errorf("readOnly: yes please: %v, want a line/column error", err)
	}
}
