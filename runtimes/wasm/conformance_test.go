package wasm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// The WASI conformance suite (../shared/wasm-corpus/D): every preview1
// test of wasi-testsuite runs through the provider as a job, the way the
// suite's own runner runs `wasmtime run`, and its exit code and output are
// compared with its JSON specification. docs/WASI-CONFORMANCE.md says why
// each test in wazero's expectations file is let off.

const (
	// preview1Tests is how many preview1 tests the archive holds; a count
	// that differs means the archive or its unpacking changed.
	preview1Tests = 72
	// preview3Tests is how many WASI 0.3 tests it holds (not run yet).
	preview3Tests = 55
	// conformanceJobWithin bounds one test's run.
	conformanceJobWithin = 30 * time.Second
)

// wasiTestsuite unpacks the archive into a folder of the test's own and
// returns its wasi-testsuite folder. Without the corpus the test is
// skipped, unless FUNGI_REQUIRE_CORPUS=1 says it must run.
func wasiTestsuite(t *testing.T) string {
	t.Helper()
	archive := filepath.Join(testutil.RepoRoot(), "..", "shared", "wasm-corpus", "D", "wasi-testsuite.tar.xz")
	if _, err := os.Stat(archive); err != nil {
		if os.Getenv("FUNGI_REQUIRE_CORPUS") == "1" {
			t.Fatalf("FUNGI_REQUIRE_CORPUS=1 but the WASI conformance suite is missing: %v", err)
		}
		t.Skipf("no WASI conformance suite at %s", archive)
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "xJf", archive, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("unpack %s (tar xJf needs xz-utils): %v\n%s", archive, err, out)
	}
	return filepath.Join(dir, "wasi-testsuite")
}

// conformanceSpec is a test's JSON specification, in the legacy form or
// the operations form, reduced to what a preview1 command needs.
type conformanceSpec struct {
	Args     []string          `json:"args"`
	Env      map[string]string `json:"env"`
	Root     *string           `json:"root"`
	ExitCode int               `json:"exit_code"`
	// Stdout is compared only when the specification names it, as the
	// suite's runner does; stderr is never compared.
	Stdout *string `json:"stdout"`

	Operations []struct {
		Type     string            `json:"type"`
		Args     []string          `json:"args"`
		Env      map[string]string `json:"env"`
		Root     *string           `json:"root"`
		ExitCode int               `json:"exit_code"`
		ID       string            `json:"id"`
		Payload  string            `json:"payload"`
	} `json:"operations"`
}

func readConformanceSpec(wasm string) (conformanceSpec, error) {
	var s conformanceSpec
	data, err := os.ReadFile(strings.TrimSuffix(wasm, ".wasm") + ".json")
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil // the default specification
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, err
	}
	for _, op := range s.Operations {
		switch op.Type {
		case "run":
			s.Args, s.Env, s.Root = op.Args, op.Env, op.Root
		case "wait":
			s.ExitCode = op.ExitCode
		case "read":
			if op.ID != "stderr" {
				s.Stdout = &op.Payload
			}
		default:
			return s, fmt.Errorf("operation %q needs a network the preview1 runner does not give", op.Type)
		}
	}
	return s, nil
}

// wazeroSkips reads expectations/wazero/linux.toml: suite name -> the
// names of the tests wazero's own run skips.
func wazeroSkips(t *testing.T, suiteDir string) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(suiteDir, "expectations", "wazero", "linux.toml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	skips := map[string][]string{}
	var suite, test string
	inTest := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch line {
		case "[[suite]]":
			suite, inTest = "", false
			continue
		case "[[suite.test]]":
			test, inTest = "", true
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		key, value = strings.TrimSpace(key), strings.Trim(strings.TrimSpace(value), `"`)
		switch {
		case key == "name" && inTest:
			test = value
		case key == "name":
			suite = value
		case key == "action" && value == "skip" && inTest:
			skips[suite] = append(skips[suite], test)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return skips
}

// recordedLog records a job's log write by write, so the guest's own output
// can be told from the lines fungi adds around it, and keeps its stderr
// apart: the suite's runner compares stdout alone.
type recordedLog struct {
	mu     sync.Mutex
	writes []string
	stderr testutil.SyncBuffer
}

// Stderr is where the job's stderr goes.
func (o *recordedLog) Stderr() io.Writer { return &o.stderr }

func (o *recordedLog) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writes = append(o.writes, string(p))
	return len(p), nil
}

// guest is what the guest wrote, without fungi's own lines.
func (o *recordedLog) guest() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var b strings.Builder
	for _, w := range o.writes {
		if !strings.HasPrefix(strings.TrimLeft(w, "\n"), "fungi: ") {
			b.WriteString(w)
		}
	}
	return b.String()
}

func (o *recordedLog) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.writes, "") + o.stderr.String()
}

// copyTree copies a test's root folder to a scratch folder the test may
// change, as the suite's runner does.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		default:
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, in)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			return err
		}
	})
}

// firstLine is an error's first line: a trap's stack trace is in the log.
func firstLine(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}

// conformanceResult is how one test ran.
type conformanceResult struct {
	code   int
	output string
	err    error // the job could not run, or trapped
}

// runConformanceTest pulls and starts one test module as a job (no ports)
// and waits for its end.
func runConformanceTest(p *Provider, wasm string, spec conformanceSpec, scratch string) conformanceResult {
	m := testManifest(wasm, spec.Env)
	m.Metadata.Name = "conformance"
	m.Spec.Ports = nil
	m.Spec.Command = spec.Args
	art, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: m}, func(*messages.PullProgress) {})
	if err != nil {
		return conformanceResult{err: fmt.Errorf("pull: %w", err)}
	}
	var mounts []manifest.ResolvedMount
	if spec.Root != nil {
		if err := copyTree(filepath.Join(filepath.Dir(wasm), *spec.Root), scratch); err != nil {
			return conformanceResult{err: err}
		}
		mounts = []manifest.ResolvedMount{{HostPath: scratch, RuntimePath: "/"}}
	}
	out := &recordedLog{}
	inst, err := p.Start(context.Background(), runtimes.InstanceSpec{
		Name: "conformance", Manifest: m, Artifact: art, Log: out, Mounts: mounts, DataDir: scratch,
	})
	if err != nil {
		return conformanceResult{err: fmt.Errorf("start: %w", err)}
	}
	select {
	case <-inst.Done():
	case <-time.After(conformanceJobWithin):
		inst.Stop(context.Background())
		return conformanceResult{err: fmt.Errorf("the job ran longer than %s; its log:\n%s", conformanceJobWithin, out)}
	}
	var exit *JobExit
	if err := inst.Err(); !errors.As(err, &exit) {
		return conformanceResult{err: fmt.Errorf("the job ended with %v, not an exit code; its stderr:\n%s", firstLine(err), out.stderr.String())}
	}
	return conformanceResult{code: exit.Code, output: out.guest()}
}

func TestWASIConformance(t *testing.T) {
	suiteDir := wasiTestsuite(t)
	skips := wazeroSkips(t, suiteDir)
	p := New(DefaultConfig(sharedCache))
	t.Cleanup(func() { p.Close(context.Background()) })

	suites, err := filepath.Glob(filepath.Join(suiteDir, "tests", "*", "testsuite", "wasm32-wasip1"))
	if err != nil {
		t.Fatal(err)
	}
	total, passed := 0, 0
	var letOff []string
	for _, dir := range suites {
		var meta struct {
			Name string `json:"name"`
		}
		if data, err := os.ReadFile(filepath.Join(dir, "manifest.json")); err != nil || json.Unmarshal(data, &meta) != nil {
			t.Fatalf("%s: no readable manifest.json (%v)", dir, err)
		}
		cleanups, _ := filepath.Glob(filepath.Join(dir, "*.cleanup"))
		for _, c := range cleanups {
			os.RemoveAll(c)
		}
		wasms, _ := filepath.Glob(filepath.Join(dir, "*.wasm"))
		sort.Strings(wasms)
		for _, wasm := range wasms {
			total++
			name := strings.TrimSuffix(filepath.Base(wasm), ".wasm")
			skipped := slices.Contains(skips[meta.Name], name)
			ok := t.Run(filepath.Base(filepath.Dir(filepath.Dir(dir)))+"/"+name, func(t *testing.T) {
				spec, err := readConformanceSpec(wasm)
				if err != nil {
					t.Fatalf("specification: %v", err)
				}
				got := runConformanceTest(p, wasm, spec, t.TempDir())
				var problems []string
				switch {
				case got.err != nil:
					problems = append(problems, got.err.Error())
				default:
					if got.code != spec.ExitCode {
						problems = append(problems, fmt.Sprintf("exit code %d, want %d", got.code, spec.ExitCode))
					}
					if spec.Stdout != nil && got.output != *spec.Stdout {
						problems = append(problems, fmt.Sprintf("stdout %q, want %q", got.output, *spec.Stdout))
					}
				}
				if len(problems) == 0 {
					return
				}
				if skipped {
					t.Logf("fails as in wazero (expectations/wazero/linux.toml skips it): %s", strings.Join(problems, "; "))
					letOff = append(letOff, name)
					return
				}
				t.Error(strings.Join(problems, "; "))
			})
			if ok && !slices.Contains(letOff, name) {
				passed++
			}
		}
	}
	if total != preview1Tests {
		t.Errorf("found %d preview1 tests, want %d: the archive is not the one the README describes", total, preview1Tests)
	}
	p3, _ := filepath.Glob(filepath.Join(suiteDir, "tests", "*", "testsuite", "wasm32-wasip3", "*.wasm"))
	if len(p3) != preview3Tests {
		t.Errorf("found %d WASI 0.3 tests, want %d", len(p3), preview3Tests)
	}
	t.Logf("WASI preview1 conformance: %d of %d pass; %d fail as wazero's expectations say (%s); %d WASI 0.3 tests not run",
		passed, total, len(letOff), strings.Join(letOff, ", "), len(p3))
}
