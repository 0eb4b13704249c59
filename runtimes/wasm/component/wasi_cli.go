package component

import (
	"errors"
	"sort"

	"github.com/tetratelabs/wazero/sys"
)

// cliHost is the wasi:cli part of hostFuncs.
var cliHost = map[string]map[string]hostDef{
	"wasi:cli/environment": {
		"get-environment": {"func() -> list<tuple<string,string>>", func(c *cx, a []any) []any {
			env := c.inst.wasi.cfg.Env
			keys := make([]string, 0, len(env))
			for k := range env {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			out := make([]any, len(keys))
			for i, k := range keys {
				out[i] = []any{k, env[k]}
			}
			return []any{out}
		}},
		"get-arguments": {"func() -> list<string>", func(c *cx, a []any) []any {
			out := make([]any, len(c.inst.wasi.cfg.Args))
			for i, s := range c.inst.wasi.cfg.Args {
				out[i] = s
			}
			return []any{out}
		}},
		"initial-cwd": {"func() -> option<string>", func(c *cx, a []any) []any { return []any{Variant{}} }},
	},
	"wasi:cli/exit": {
		"exit": {"func(status: result)", func(c *cx, a []any) []any {
			code := uint32(0)
			if a[0].(Variant).Case != 0 {
				code = 1
			}
			panic(sys.NewExitError(code))
		}},
		"exit-with-code": {"func(status-code: u8)", func(c *cx, a []any) []any { panic(sys.NewExitError(uint32(a[0].(uint8)))) }},
	},
	"wasi:cli/stdin":  {"get-stdin": {"func() -> input-stream", func(c *cx, a []any) []any { return []any{&inputStream{r: c.inst.wasi.stdin}} }}},
	"wasi:cli/stdout": {"get-stdout": {"func() -> output-stream", func(c *cx, a []any) []any { return []any{&outputStream{w: c.inst.wasi.stdout}} }}},
	"wasi:cli/stderr": {"get-stderr": {"func() -> output-stream", func(c *cx, a []any) []any { return []any{&outputStream{w: c.inst.wasi.stderr}} }}},
	// fungi's stdio is never a terminal.
	"wasi:cli/terminal-input":  {},
	"wasi:cli/terminal-output": {},
	"wasi:cli/terminal-stdin":  {"get-terminal-stdin": {"func() -> option<terminal-input>", none}},
	"wasi:cli/terminal-stdout": {"get-terminal-stdout": {"func() -> option<terminal-output>", none}},
	"wasi:cli/terminal-stderr": {"get-terminal-stderr": {"func() -> option<terminal-output>", none}},
}

func none(c *cx, a []any) []any { return []any{Variant{}} }

func exitCode0(err error) (int, bool) {
	var e *sys.ExitError
	if errors.As(err, &e) {
		return int(e.ExitCode()), true
	}
	return 0, false
}
