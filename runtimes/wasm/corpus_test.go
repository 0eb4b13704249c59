package wasm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
)

// corpusDir is the folder of WAGI modules other projects built
// (../shared/wasm-corpus/C). Without it the test is skipped, unless
// FUNGI_REQUIRE_CORPUS=1 says it must run.
func corpusDir(t *testing.T) string {
	dir := filepath.Join(testutil.RepoRoot(), "..", "shared", "wasm-corpus", "C")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("FUNGI_REQUIRE_CORPUS") == "1" {
			t.Fatalf("FUNGI_REQUIRE_CORPUS=1 but the wasm corpus is missing: %v", err)
		}
		t.Skipf("no wasm corpus at %s", dir)
	}
	return dir
}

// serveCorpusModule pulls and starts one corpus module as a wasm service.
func serveCorpusModule(t *testing.T, file string) *running {
	t.Helper()
	path := filepath.Join(corpusDir(t), file)
	p := New(DefaultConfig(sharedCache))
	t.Cleanup(func() { p.Close(context.Background()) })
	m := testManifest(path, map[string]string{"FROM_MANIFEST": "yes"})
	art, err := p.Fetch(context.Background(), runtimes.FetchRequest{Manifest: m}, func(*messages.PullProgress) {})
	if err != nil {
		t.Fatalf("pull %s: %v", file, err)
	}
	port := testutil.FreePort(t)
	log := &testutil.SyncBuffer{}
	inst, err := p.Start(context.Background(), runtimes.InstanceSpec{Name: "corpus", Manifest: m, Artifact: art, Log: log,
		Ports: []runtimes.PortBinding{{Name: "http", HostPort: port}}})
	if err != nil {
		t.Fatalf("start %s: %v", file, err)
	}
	t.Cleanup(func() { inst.Stop(context.Background()) })
	return &running{p: p, base: fmt.Sprintf("http://127.0.0.1:%d", port), log: log, inst: inst}
}

// The expectations below are each module's documented behaviour
// (../shared/wasm-corpus/README.md), from its source and its own project's
// tests, with fungi's route being WAGI's "/..." (the service answers every
// path on its port).

func TestCorpusWAGIHello(t *testing.T) {
	g := serveCorpusModule(t, "deislabs_wagi__hello.wasm")
	// Its header is "content-type:text/plain", lower case, no space.
	code, body, h := get(t, g.base+"/")
	if code != http.StatusOK || h.Get("Content-Type") != "text/plain" || body != "hello world\n" {
		t.Fatalf("got %d %q %q", code, h.Get("Content-Type"), body)
	}
}

func TestCorpusWAGILogWritesStderrToTheLog(t *testing.T) {
	g := serveCorpusModule(t, "deislabs_wagi__log.wasm")
	code, body, h := get(t, g.base+"/")
	if code != http.StatusOK || h.Get("Content-Type") != "text/html;charset=UTF-8" || body != "Oh hi world\n\n" {
		t.Fatalf("got %d %q %q", code, h.Get("Content-Type"), body)
	}
	if !strings.Contains(g.log.String(), "Some logging\n") {
		t.Fatalf("stderr is not in the service log:\n%s", g.log.String())
	}
	if strings.Contains(body, "Some logging") {
		t.Fatal("stderr reached the response")
	}
}

func TestCorpusWAGIPrintEnvSeesTheCGIVariables(t *testing.T) {
	g := serveCorpusModule(t, "deislabs_wagi__print-env.wasm")
	code, body, _ := get(t, g.base+"/test/fizz%20x/buzz?abc=def")
	if code != http.StatusOK {
		t.Fatalf("got %d %q", code, body)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			t.Fatalf("line %q is not `KEY = VALUE`", line)
		}
		vars[k] = v
	}
	port := strings.TrimPrefix(g.base, "http://127.0.0.1:")
	for k, want := range map[string]string{
		"REQUEST_METHOD":    "GET",
		"REMOTE_ADDR":       "127.0.0.1",
		"SCRIPT_NAME":       "",
		"X_MATCHED_ROUTE":   "/...",
		"PATH_INFO":         "/test/fizz x/buzz",
		"PATH_TRANSLATED":   "/test/fizz x/buzz",
		"X_RAW_PATH_INFO":   "/test/fizz%20x/buzz",
		"X_FULL_URL":        "http://127.0.0.1:" + port + "/test/fizz%20x/buzz?abc=def",
		"QUERY_STRING":      "abc=def",
		"SERVER_PORT":       port,
		"GATEWAY_INTERFACE": "CGI/1.1",
		"FROM_MANIFEST":     "yes",
	} {
		if got, ok := vars[k]; !ok || got != want {
			t.Errorf("%s = %q (set: %v), want %q", k, got, ok, want)
		}
	}
}

func TestCorpusSpinWAGITestSeesArgsAndHeaders(t *testing.T) {
	g := serveCorpusModule(t, "fermyon_spin__wagi-test.wasm")
	// Spin's test_wagi_http, on fungi's port.
	req, _ := http.NewRequest(http.MethodPost, g.base+"/test?abc=def", strings.NewReader("Fermyon"))
	req.Header.Set("x-custom-foo", "bar")
	req.Header.Set("x-custom-foo2", "bar2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Args []string          `json:"args"`
		Vars map[string]string `json:"vars"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%d: the body is not the module's JSON: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if strings.Join(out.Args, "|") != "/test|abc=def" {
		t.Errorf("args %q, want [\"/test\" \"abc=def\"]", out.Args)
	}
	if out.Vars["HTTP_X_CUSTOM_FOO"] != "bar" || out.Vars["HTTP_X_CUSTOM_FOO2"] != "bar2" || out.Vars["CONTENT_LENGTH"] != "7" {
		t.Errorf("vars: HTTP_X_CUSTOM_FOO %q, HTTP_X_CUSTOM_FOO2 %q, CONTENT_LENGTH %q",
			out.Vars["HTTP_X_CUSTOM_FOO"], out.Vars["HTTP_X_CUSTOM_FOO2"], out.Vars["CONTENT_LENGTH"])
	}
}

func TestCorpusGrainHelloPrintsEnvironmentAndArgs(t *testing.T) {
	g := serveCorpusModule(t, "deislabs_wagi-examples__hello.gr.wasm")
	code, body, h := get(t, g.base+"/hello?name=grain&x")
	if code != http.StatusOK || h.Get("Content-Type") != "text/plain" {
		t.Fatalf("got %d %q %q", code, h.Get("Content-Type"), body)
	}
	env, args, ok := strings.Cut(strings.TrimPrefix(body, "==== Environment: ====\n"), "==== Args: ====\n")
	if !ok || !strings.HasPrefix(body, "==== Environment: ====\n") {
		t.Fatalf("body is not the Grain example's layout: %q", body)
	}
	for _, line := range []string{"REQUEST_METHOD=GET", "PATH_INFO=/hello", "QUERY_STRING=name=grain&x", "FROM_MANIFEST=yes"} {
		if !strings.Contains("\n"+env, "\n"+line+"\n") {
			t.Errorf("environment lacks %q:\n%s", line, env)
		}
	}
	if args != "/hello\nname=grain\nx\n" {
		t.Errorf("args %q", args)
	}
}
