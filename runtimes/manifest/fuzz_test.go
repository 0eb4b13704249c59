package manifest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/fungi-go/fungi/internal/testutil"
)

// FuzzDecode feeds the decoder arbitrary text. Whatever it is given, the
// decoder must not panic, must stay linear in the input (counted in nodes
// visited, not in time, so a loaded machine does not fail it), must name a
// line and column for every problem, and must accept again what it accepted
// once written back out.
//
// CI: go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 10s ./runtimes/manifest
func FuzzDecode(f *testing.F) {
	examples, err := filepath.Glob(filepath.Join(testutil.RepoRoot(), "examples", "service-manifests", "*.yaml"))
	if err != nil || len(examples) == 0 {
		f.Fatalf("no example manifests to seed from (%v)", err)
	}
	for _, path := range examples {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(good))
	f.Add([]byte(edit("${APP_HOME}/data", "/srv/media/../etc")))
	f.Add([]byte(edit("  env:\n", "  env: &e {A: b}\n  command: [*e, &c x, *c]\n")))
	f.Add([]byte(header + "spec: {ports: &p [*p, *p], command: &c [*c]}\n"))
	f.Add(aliasFanOut(MaxPorts))
	f.Add([]byte(header + "spec:\n  runtime: wasmtime\n" + strings.Repeat("  u: 1\n", 200)))
	f.Add([]byte("apiVersion: [unclosed"))
	f.Add([]byte("\x00\xff"))
	f.Add([]byte(strings.Repeat("[", 200)))
	f.Add([]byte("? [a, b]\n: c\n<<: {x: 1}\n"))

	allowed := &NodeRules{AllowedMounts: []string{"/srv/media"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, rules := range []*NodeRules{nil, allowed} {
			m, work, err := parseCounting(data, rules)
			if limit := 16*len(data) + 64; work > limit {
				t.Fatalf("decoding %d bytes visited %d nodes; linear decoding stays under %d", len(data), work, limit)
			}
			if err != nil {
				checkProblems(t, err)
				continue
			}
			out, err := yaml.Marshal(m)
			if err != nil {
				t.Fatalf("an accepted manifest cannot be written back: %v", err)
			}
			if _, err := parse(out, rules); err != nil {
				t.Fatalf("accepted\n%s\nbut not its own rendering\n%s\n%v", data, out, err)
			}
		}
	})
}

func checkProblems(t *testing.T, err error) {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("error %v (%T) is not a non-empty manifest.Errors", err, err)
	}
	if len(errs) > MaxReportedErrors+2 {
		t.Fatalf("%d problems listed; at most %d and a count of the rest", len(errs), MaxReportedErrors)
	}
	for _, e := range errs {
		if e.Line < 1 || e.Column < 1 || e.Msg == "" {
			t.Fatalf("problem without a position or a message: %#v", e)
		}
	}
	if !strings.HasPrefix(err.Error(), "invalid manifest") {
		t.Fatalf("error %q does not say the manifest is invalid", err)
	}
}
