package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/fungi-go/fungi/internal/home"
	"github.com/fungi-go/fungi/internal/testutil"
	"github.com/fungi-go/fungi/messages"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"fungi": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts drives real fungi binaries and daemons through the scripts in
// testdata/script.
func TestScripts(t *testing.T) {
	wasm := testutil.BuildWasm(t, "examples/apps/filebrowser-lite")
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(e *testscript.Env) error {
			e.Setenv("FUNGI_DIR", filepath.Join(e.WorkDir, "home"))
			return copyExamples(e.WorkDir, wasm)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitdaemon": cmdWaitDaemon,
			"waitstate":  cmdWaitState,
			"svcport":    cmdServicePort,
			"http":       cmdHTTP,
			"holdport":   cmdHoldPort,
		},
	})
}

// copyExamples lays out examples/ in the script's folder as in the
// repository, with the wasm that `make examples` would build.
func copyExamples(work, wasm string) error {
	root := testutil.RepoRoot()
	manifests, _ := filepath.Glob(filepath.Join(root, "examples/service-manifests/*.yaml"))
	dst := filepath.Join(work, "examples", "service-manifests")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, m := range manifests {
		data, err := os.ReadFile(m)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(m)), data, 0o644); err != nil {
			return err
		}
	}
	bin, err := os.ReadFile(wasm)
	if err != nil {
		return err
	}
	os.MkdirAll(filepath.Join(work, "examples", "wasm"), 0o755)
	return os.WriteFile(filepath.Join(work, "examples", "wasm", "filebrowser-lite.wasm"), bin, 0o644)
}

func scriptClient(ts *testscript.TestScript) (*daemonClient, error) {
	h, err := home.Open(ts.Getenv("FUNGI_DIR"))
	if err != nil {
		return nil, err
	}
	e := &env{home: h, stdout: io.Discard, stderr: io.Discard}
	return e.connect()
}

// waitdaemon waits until the daemon of $FUNGI_DIR answers.
func cmdWaitDaemon(ts *testscript.TestScript, neg bool, args []string) {
	err := testutil.Poll(60*time.Second, func() error {
		c, err := scriptClient(ts)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err = c.Info(ctx, &messages.InfoRequest{})
		return err
	})
	if err != nil {
		ts.Fatalf("daemon did not come up: %v", err)
	}
}

// waitstate NAME STATE waits until the service reports STATE.
func cmdWaitState(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: waitstate NAME STATE")
	}
	err := testutil.Poll(60*time.Second, func() error {
		c, err := scriptClient(ts)
		if err != nil {
			return err
		}
		defer c.Close()
		info, err := c.Inspect(context.Background(), &messages.InspectService{Name: args[0]})
		if err != nil {
			return err
		}
		if info.State != args[1] {
			return fmt.Errorf("state %s (last error %q)", info.State, info.LastError)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%s never became %s: %v", args[0], args[1], err)
	}
}

// svcport NAME VAR sets $VAR to the host port of the service's first port.
func cmdServicePort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: svcport NAME VAR")
	}
	c, err := scriptClient(ts)
	ts.Check(err)
	defer c.Close()
	info, err := c.Inspect(context.Background(), &messages.InspectService{Name: args[0]})
	ts.Check(err)
	if len(info.Ports) == 0 {
		ts.Fatalf("%s has no ports", args[0])
	}
	ts.Setenv(args[1], strconv.Itoa(int(info.Ports[0].HostPort)))
}

// http METHOD URL [FILE] prints "HTTP <status>" and the body; it fails on a
// connection error (so `! http` asserts nothing listens).
func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: http METHOD URL [BODYFILE]")
	}
	var body io.Reader
	if len(args) == 3 {
		body = strings.NewReader(ts.ReadFile(args[2]))
	}
	req, err := http.NewRequest(args[0], args[1], body)
	ts.Check(err)
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		if neg {
			return
		}
		ts.Fatalf("%s %s: %v", args[0], args[1], err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if neg {
		ts.Fatalf("%s %s answered %s, want no answer", args[0], args[1], resp.Status)
	}
	fmt.Fprintf(ts.Stdout(), "HTTP %d\n%s", resp.StatusCode, data)
}

// holdport PORT listens on 127.0.0.1:PORT until the script ends, as another
// program on the machine would.
func cmdHoldPort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: holdport PORT")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+args[0])
	ts.Check(err)
	ts.Defer(func() { ln.Close() })
}
