package component

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// trapped stands for "the guest panicked": Rust's test programs abort, so
// Run returns a trap error, and the panic message is on stderr.
const trapped = -1

func run(tb testing.TB, c *Component, cfg Config) (int, string, string) {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cfg.Stdout, cfg.Stderr = &stdout, &stderr
	code, err := c.Run(context.Background(), cfg)
	if err != nil {
		if !strings.Contains(stderr.String(), "panicked") {
			tb.Fatalf("run: %v (stderr: %s)", err, stderr.String())
		}
		return trapped, stdout.String(), stderr.String()
	}
	return code, stdout.String(), stderr.String()
}

func TestCommandComponentsRunAsDocumented(t *testing.T) {
	listing := map[string]string{"foo.txt": "", "bar.txt": "", "baz.txt": "", "sub/wow.txt": "", "sub/yay.txt": ""}
	cases := []struct {
		name string
		file string
		cfg  func(t *testing.T) Config
		code int
		out  string
	}{
		{"args", "B/bytecodealliance_jco__cli_args.component.wasm", func(*testing.T) Config {
			return Config{Args: []string{"cli_args.wasm", "hello", "this", "", "is an argument", "with 🚩 emoji"}}
		}, 0, ""},
		{"args wrong", "B/bytecodealliance_jco__cli_args.component.wasm", func(*testing.T) Config {
			return Config{Args: []string{"cli_args.wasm", "hello"}}
		}, trapped, ""},
		{"env", "B/bytecodealliance_jco__cli_env.component.wasm", func(*testing.T) Config {
			return Config{Env: map[string]string{"frabjous": "day", "callooh": "callay"}}
		}, 0, ""},
		{"env extra", "B/bytecodealliance_jco__cli_env.component.wasm", func(*testing.T) Config {
			return Config{Env: map[string]string{"frabjous": "day", "callooh": "callay", "PATH": "/bin"}}
		}, trapped, ""},
		{"exit failure", "B/bytecodealliance_jco__cli_exit_failure.component.wasm", func(*testing.T) Config { return Config{} }, 1, ""},
		{"exit success", "B/bytecodealliance_jco__cli_exit_success.component.wasm", func(*testing.T) Config { return Config{} }, 0, ""},
		{"hello stdout", "B/bytecodealliance_jco__cli_hello_stdout.component.wasm", func(*testing.T) Config {
			return Config{Args: []string{"hello", "gussie", "sparky", "willa"}}
		}, 0, "hello, world\n"},
		{"random", "B/bytecodealliance_jco__preview2_random.component.wasm", func(*testing.T) Config { return Config{} }, 0, ""},
		{"file read", "B/bytecodealliance_jco__cli_file_read.component.wasm", func(t *testing.T) Config {
			dir := writeFiles(t, map[string]string{"bar.txt": "And stood awhile in thought"})
			return Config{Preopens: []Preopen{{HostPath: dir, GuestPath: "/"}}}
		}, 0, ""},
		{"file read changed", "B/bytecodealliance_jco__cli_file_read.component.wasm", func(t *testing.T) Config {
			dir := writeFiles(t, map[string]string{"bar.txt": "And stood a while in thought"})
			return Config{Preopens: []Preopen{{HostPath: dir, GuestPath: "/"}}}
		}, trapped, ""},
		{"directory list", "B/bytecodealliance_jco__cli_directory_list.component.wasm", func(t *testing.T) Config {
			return Config{Preopens: []Preopen{{HostPath: writeFiles(t, listing), GuestPath: "/"}}}
		}, 0, ""},
		{"directory list extra", "B/bytecodealliance_jco__cli_directory_list.component.wasm", func(t *testing.T) Config {
			files := map[string]string{"extra.txt": ""}
			for k, v := range listing {
				files[k] = v
			}
			return Config{Preopens: []Preopen{{HostPath: writeFiles(t, files), GuestPath: "/"}}}
		}, trapped, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := compileCorpus(t, tc.file)
			if c.Kind() != KindCommand {
				t.Fatalf("Kind() = %v, want %v", c.Kind(), KindCommand)
			}
			code, out, errOut := run(t, c, tc.cfg(t))
			if code != tc.code {
				t.Fatalf("exit code %d, want %d (stdout %q, stderr %q)", code, tc.code, out, errOut)
			}
			if tc.out != "" && (out != tc.out || errOut != tc.out) {
				t.Fatalf("stdout %q, stderr %q; want both %q", out, errOut, tc.out)
			}
		})
	}
}
