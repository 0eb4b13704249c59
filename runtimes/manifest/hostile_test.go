package manifest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// header is the start of a manifest every hostile case shares.
const header = `apiVersion: fungi.dev/v1alpha1
kind: ServiceManifest
metadata: {name: hostile}
`

// manyUnknownKeys is the reported 560 KB manifest: 40k unknown keys under
// spec, each one a problem to report.
func manyUnknownKeys() []byte {
	var b strings.Builder
	b.WriteString(header + "spec:\n  runtime: wasmtime\n  source: {file: a.wasm}\n")
	for i := range 40_000 {
		fmt.Fprintf(&b, "  u%06d: 1\n", i)
	}
	return []byte(b.String())
}

// aliasFanOut is the reported 16 KB manifest: one anchored mapping of 1000
// keys, listed n times as ports through an alias.
func aliasFanOut(n int) []byte {
	var b strings.Builder
	b.WriteString(header + "spec:\n  runtime: docker\n  source: {image: nginx}\n  ports: [&p {servicePort: 80, ")
	for i := range 1000 {
		fmt.Fprintf(&b, "k%d: 1, ", i)
	}
	b.WriteString("}")
	for range n - 1 {
		b.WriteString(", *p")
	}
	b.WriteString("]\n")
	return []byte(b.String())
}

// hugeValid is the reported 50 MB manifest: valid YAML, 1.15 M environment
// variables.
func hugeValid() []byte {
	b := make([]byte, 0, 60<<20)
	b = append(b, header+"spec:\n  runtime: wasmtime\n  source: {file: a.wasm}\n  env:\n"...)
	for i := range 1_150_000 {
		b = append(b, "    VARIABLE_"...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, ": value-of-the-variable-"...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '\n')
	}
	return b
}

// parseWithin parses data and renders the error, failing the test if that
// has not finished by the deadline: a hostile manifest must not hold up
// whoever decodes it.
func parseWithin(t *testing.T, data []byte, rules *NodeRules) (*Manifest, error) {
	t.Helper()
	type result struct {
		m   *Manifest
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := parse(data, rules)
		if err != nil {
			_ = err.Error() // rendering the problems must be linear too
		}
		done <- result{m, err}
	}()
	select {
	case r := <-done:
		return r.m, r.err
	case <-time.After(30 * time.Second):
		t.Fatalf("decoding a %d-byte manifest did not finish within 30s", len(data))
		return nil, nil
	}
}

// requirePositions checks that every problem names its line and column.
func requirePositions(t *testing.T, err error) Errors {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is a %T, want manifest.Errors", err, err)
	}
	for _, e := range errs {
		if e.Line < 1 || e.Column < 1 {
			t.Fatalf("problem without a position: %#v", e)
		}
	}
	return errs
}

func TestParseRefusesManifestOverOneMiB(t *testing.T) {
	data := hugeValid()
	_, err := parseWithin(t, data, nil)
	if err == nil || !strings.Contains(err.Error(), "a manifest may be at most 1048576 bytes") {
		t.Fatalf("a %d-byte manifest: want a refusal naming the 1 MiB limit, got %v", len(data), err)
	}
	requirePositions(t, err)
	// Exactly at the limit is still parsed (and here refused for content).
	atLimit := []byte(header + "spec: {}\n#")
	atLimit = append(atLimit, []byte(strings.Repeat("x", MaxSize-len(atLimit)))...)
	if _, err := Parse(atLimit); err == nil || strings.Contains(err.Error(), "at most 1048576 bytes") {
		t.Fatalf("a manifest of exactly MaxSize bytes was refused for its size: %v", err)
	}
}

func TestParseReportsTwentyOfFortyThousandUnknownKeys(t *testing.T) {
	data := manyUnknownKeys()
	_, err := parseWithin(t, data, nil)
	errs := requirePositions(t, err)
	if len(errs) != MaxReportedErrors+1 {
		t.Fatalf("%d problems listed, want the first %d and a count of the rest", len(errs), MaxReportedErrors)
	}
	if first := errs[0]; first.Line != 7 || first.Column != 3 || first.Field != "spec.u000000" {
		t.Fatalf("first problem %v, want line 7, column 3: spec.u000000", first)
	}
	last := errs[len(errs)-1]
	if !strings.Contains(last.Msg, "and 39980 more problems") || last.Line != 7+MaxReportedErrors {
		t.Fatalf("last entry %v, want the 39980 others counted from line %d", last, 7+MaxReportedErrors)
	}
	if !strings.HasPrefix(err.Error(), "invalid manifest (40000 problems):") {
		t.Fatalf("error starts %.60q, want the total of 40000 problems", err.Error())
	}
}

func TestParseRefusesAliasFanOut(t *testing.T) {
	// As reported: 2000 aliases, refused by the count of ports before any
	// is walked.
	data := aliasFanOut(2000)
	if len(data) > 20_000 {
		t.Fatalf("the fan-out manifest is %d bytes; the reported one was 16 KB", len(data))
	}
	_, err := parseWithin(t, data, nil)
	requirePositions(t, err)
	if err == nil || !strings.Contains(err.Error(), "line 7, column 10: spec.ports: has 2000 ports; a manifest may have at most 64") {
		t.Fatalf("want the 2000 ports refused, got %v", err)
	}
	// Within the count, the aliases still may not multiply the document:
	// 64 ports of 1000 keys each is 30 times what is written.
	_, err = parseWithin(t, aliasFanOut(MaxPorts), nil)
	errs := requirePositions(t, err)
	if err == nil || !strings.Contains(err.Error(), "the aliases of this manifest repeat more of it than it is long (alias *p)") {
		t.Fatalf("want a refusal of the alias expansion, got %v", err)
	}
	if len(errs) > MaxReportedErrors+2 { // the alias problem is always listed
		t.Fatalf("%d problems listed", len(errs))
	}
}

func TestParseAcceptsModestAliases(t *testing.T) {
	m, err := Parse([]byte(header + `spec:
  runtime: docker
  source: {image: &img nginx}
  env: {IMAGE: *img}
  ports: [&p {servicePort: 80}, *p, *p]
`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Spec.Env["IMAGE"] != "nginx" || len(m.Spec.Ports) != 3 || m.Spec.Ports[2].ServicePort != 80 {
		t.Fatalf("values through aliases: env %v, ports %+v", m.Spec.Env, m.Spec.Ports)
	}
}

func TestParseRefusesSelfReferentialAlias(t *testing.T) {
	_, err := parseWithin(t, []byte(header+"spec:\n  runtime: wasmtime\n  source: {file: a.wasm}\n  command: &c [*c, *c]\n"), nil)
	requirePositions(t, err)
	if err == nil || !strings.Contains(err.Error(), "spec.command[0]: must be text, found a list") {
		t.Fatalf("want the nested list refused, got %v", err)
	}
}

func TestParseCapsCounts(t *testing.T) {
	base := header + "spec:\n  runtime: docker\n  source: {image: nginx}\n"
	list := func(n int, item string) string {
		return "[" + strings.TrimSuffix(strings.Repeat(item+", ", n), ", ") + "]"
	}
	var env strings.Builder
	env.WriteString("{")
	for i := range MaxEnv + 1 {
		fmt.Fprintf(&env, "V%d: x, ", i)
	}
	env.WriteString("}")
	tests := []struct{ name, yaml, want string }{
		{"env", base + "  env: " + env.String() + "\n", "line 7, column 8: spec.env: has 1025 environment variables; a manifest may have at most 1024"},
		{"ports", base + "  ports: " + list(MaxPorts+1, "{servicePort: 80}") + "\n", "line 7, column 10: spec.ports: has 65 ports; a manifest may have at most 64"},
		{"mounts", base + "  mounts: " + list(MaxMounts+1, `{hostPath: "${APP_HOME}", runtimePath: /a}`) + "\n", "line 7, column 11: spec.mounts: has 65 mounts; a manifest may have at most 64"},
		{"command", base + "  command: " + list(MaxCommandArgs+1, "x") + "\n", "line 7, column 12: spec.command: has 1025 command arguments; a manifest may have at most 1024"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseWithin(t, []byte(tc.yaml), nil)
			requirePositions(t, err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
	// At the limit is fine.
	ok := base + "  command: " + list(MaxCommandArgs, "x") + "\n  ports: [{servicePort: 80}]\n"
	if _, err := Parse([]byte(ok)); err != nil {
		t.Fatalf("%d command arguments refused: %v", MaxCommandArgs, err)
	}
}

func TestParseRefusesControlCharactersAtTheirPosition(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"NUL", header + "spec: {runtime: wa\x00sm}\n", "line 4, column 19: control character U+0000"},
		{"latin-1", header + "spec:\n  runtime: caf\xe9\n", "line 5, column 15: byte 0xe9 is not UTF-8 text"},
		{"first line", "\x01apiVersion: x\n", "line 1, column 1: control character U+0001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
}

func TestParseSyntaxErrorOnFirstLineHasPosition(t *testing.T) {
	_, err := Parse([]byte("apiVersion: [unclosed"))
	requirePositions(t, err)
}

func TestParseForNodeRefusesMountsOutsideAllowedFolders(t *testing.T) {
	with := func(hostPath string) []byte {
		return []byte(edit("${APP_HOME}/data", hostPath))
	}
	rules := &NodeRules{AllowedMounts: []string{"/srv/media"}}
	for _, ok := range []string{"${APP_HOME}/data", "/srv/media", "/srv/media/photos/../music"} {
		if _, err := parseWithin(t, with(ok), rules); err != nil {
			t.Errorf("%s refused with /srv/media allowed: %v", ok, err)
		}
	}
	for _, bad := range []string{"/etc", "/srv/media/../../etc", "/srv/mediaX"} {
		_, err := parseWithin(t, with(bad), rules)
		want := fmt.Sprintf("line 23, column 17: spec.mounts[0].hostPath: %q is outside the service's data folder and outside every folder this node allows (mounts.allowed: /srv/media)", bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v\nwant %s", bad, err, want)
		}
	}
	// Without the node's rules (the CLI's own check) an absolute path is
	// left to the node.
	if _, err := Parse(with("/etc")); err != nil {
		t.Errorf("Parse refused an absolute mount it cannot judge: %v", err)
	}
}

func TestResolveMountsChecksBeforeCreating(t *testing.T) {
	dir := t.TempDir()
	appHome := filepath.Join(dir, "data", "svc")
	outside := filepath.Join(dir, "secret")
	for _, d := range []string{appHome, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(appHome, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "planted"), filepath.Join(appHome, "dangling")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ hostPath, mustNotExist string }{
		{"${APP_HOME}/link/new/deeper", filepath.Join(outside, "new")},
		{"${APP_HOME}/dangling", filepath.Join(dir, "planted")},
	} {
		m, err := Parse([]byte(edit("${APP_HOME}/data", tc.hostPath)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.ResolveMounts(appHome, nil)
		if _, statErr := os.Lstat(tc.mustNotExist); !errors.Is(statErr, os.ErrNotExist) {
			t.Errorf("%s: resolving it created %s outside the data folder (%v)", tc.hostPath, tc.mustNotExist, statErr)
		}
		if err == nil || !strings.Contains(err.Error(), "outside the service's data folder") {
			t.Errorf("%s: want a refusal naming the data folder, got %v", tc.hostPath, err)
		}
	}
	// Inside the data folder the missing folders are created.
	m, err := Parse([]byte(edit("${APP_HOME}/data", "${APP_HOME}/a/b")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.ResolveMounts(appHome, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(appHome, "a", "b")); err != nil || !fi.IsDir() || !strings.HasSuffix(got[0].HostPath, filepath.Join("svc", "a", "b")) {
		t.Fatalf("mount %v not created: %v", got, err)
	}
}

func TestReadFileRefusesOversizedManifest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, make([]byte, MaxSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(path); err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Fatalf("want the size refused, got %v", err)
	}
	if err := os.Truncate(path, MaxSize); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadFile(path); err != nil || len(data) != MaxSize {
		t.Fatalf("a manifest of exactly MaxSize: %d bytes, %v", len(data), err)
	}
}
