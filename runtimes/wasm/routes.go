package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"
)

// WAGI's named entrypoints: a module that exports _routes prints, when
// that function is called, one line per route, `PATH ENTRYPOINT`. A PATH
// ending in /... is a wildcard that also matches every path below it.
// Requests to a route call the named export instead of _start. Everything
// else is the module's own route, /..., which runs _start.

// Bounds on what _routes may print and how long it may take: the host
// keeps the table for the service's life, and a module that loops in
// _routes must not keep the start waiting.
const (
	maxRoutesOutput = 64 << 10
	maxRoutes       = 256
	maxRoutesWait   = 10 * time.Second
)

// defaultEntry is what WAGI runs when no declared route matches.
const defaultEntry = "_start"

// route is one line of a module's _routes output.
type route struct {
	pattern string // as the module printed it: X_MATCHED_ROUTE
	path    string // pattern without a trailing /...: SCRIPT_NAME
	prefix  bool   // pattern ended in /...
	entry   string // the export a request to it calls
}

// moduleRoute is the route every fungi wasm module answers on its own:
// the whole port, served by _start.
var moduleRoute = route{pattern: "/...", prefix: true, entry: defaultEntry}

// matches reports whether the request path p is on r: a wildcard matches
// its own path and every path below it ("/a/..." matches /a and /a/b, not
// /ab); any other route only its exact path.
func (r route) matches(p string) bool {
	if !r.prefix {
		return p == r.path
	}
	return p == r.path || strings.HasPrefix(p, r.path+"/")
}

// routeTable is a module's declared routes in the order _routes printed them.
type routeTable []route

// pick is the route a request to path p runs. As WAGI's documentation
// defines it, when several declared routes match, the one declared last
// wins (so `/one/...` then `/one/two/...` sends /one/two/x to the second);
// a path no declared route matches runs the module's _start.
func (t routeTable) pick(p string) route {
	for i := len(t) - 1; i >= 0; i-- {
		if t[i].matches(p) {
			return t[i]
		}
	}
	return moduleRoute
}

// setEnv sets the CGI variables that depend on the matched route: the
// route itself, SCRIPT_NAME (its path) and PATH_INFO (the rest of the
// request path after it), as WAGI does.
func (r route) setEnv(env map[string]string, path string) {
	if r == moduleRoute {
		return // cgiEnv's values: the whole path is PATH_INFO
	}
	info := strings.TrimPrefix(path, r.path)
	env["X_MATCHED_ROUTE"] = r.pattern
	env["SCRIPT_NAME"] = r.path
	env["PATH_INFO"] = info
	env["PATH_TRANSLATED"] = info
}

// parseRoutes reads _routes output as WAGI does: blank lines are skipped,
// every other line is exactly two whitespace-separated fields, a path
// starting with / and an export name. A module that prints nothing from
// _routes has declared no route, which is an error in WAGI too.
func parseRoutes(out []byte) (routeTable, error) {
	var t routeTable
	for n, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("line %d, %q, is not `PATH ENTRYPOINT`", n+1, trimForLog(line))
		}
		if !strings.HasPrefix(fields[0], "/") {
			return nil, fmt.Errorf("line %d: the path %q does not start with /", n+1, trimForLog(fields[0]))
		}
		if len(t) == maxRoutes {
			return nil, fmt.Errorf("more than %d routes", maxRoutes)
		}
		r := route{pattern: fields[0], path: fields[0], entry: fields[1]}
		if p, ok := strings.CutSuffix(fields[0], "/..."); ok {
			r.path, r.prefix = p, true
		}
		t = append(t, r)
	}
	if len(t) == 0 {
		return nil, errors.New("it printed no route")
	}
	return t, nil
}

func trimForLog(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// limitedBuffer keeps what a guest writes up to limit bytes; one byte
// more fails the write, which stops the guest.
type limitedBuffer struct {
	buf   bytes.Buffer
	limit int
	over  bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.limit {
		b.over = true
		return 0, fmt.Errorf("more than %d KiB", b.limit>>10)
	}
	return b.buf.Write(p)
}

// loadRoutes calls the module's _routes, if it exports one, in an instance
// of its own (no request environment, no stdin, _start not run) and
// returns the table it declares. Every entrypoint the table names must be
// an export taking and returning nothing, or the module is refused now
// rather than failing the requests that reach it. A module without
// _routes has no table: every request runs _start.
func (p *Provider) loadRoutes(ctx context.Context, compiled wazero.CompiledModule, base wazero.ModuleConfig) (routeTable, error) {
	exports := compiled.ExportedFunctions()
	def, ok := exports["_routes"]
	if !ok {
		return nil, nil
	}
	if len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0 {
		return nil, fmt.Errorf("the module's _routes export takes or returns values; WAGI's _routes takes none and prints `PATH ENTRYPOINT` lines, so fungi cannot call it")
	}
	wait := min(p.cfg.RequestTimeout, maxRoutesWait)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	out := &limitedBuffer{limit: maxRoutesOutput}
	cfg := base.WithStartFunctions().WithStdout(out) // its stderr goes to the service log
	err := func() error {
		mod, err := p.runtime.InstantiateModule(ctx, compiled, cfg)
		if err != nil {
			return err
		}
		defer mod.Close(context.Background())
		_, err = mod.ExportedFunction("_routes").Call(ctx)
		return err
	}()
	var exit *sys.ExitError
	switch {
	case out.over:
		return nil, fmt.Errorf("the module's _routes printed more than %d KiB; a route table is a few lines of `PATH ENTRYPOINT`, so the module was refused", maxRoutesOutput>>10)
	case errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded, errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("the module's _routes did not return within %s; it must only print its route table", wait)
	case errors.As(err, &exit) && exit.ExitCode() != 0:
		return nil, fmt.Errorf("the module's _routes exited with code %d instead of printing its route table", exit.ExitCode())
	case err != nil && !errors.As(err, &exit):
		return nil, fmt.Errorf("the module's _routes trapped: %v", err)
	}
	table, err := parseRoutes(out.buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("the module's _routes output is not a WAGI route table: %w", err)
	}
	var missing, badType []string
	for _, r := range table {
		def, ok := exports[r.entry]
		switch {
		case !ok:
			if !slices.Contains(missing, r.entry) {
				missing = append(missing, r.entry)
			}
		case len(def.ParamTypes()) != 0 || len(def.ResultTypes()) != 0:
			if !slices.Contains(badType, r.entry) {
				badType = append(badType, r.entry)
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the module's _routes names entrypoints it does not export: %s; export them (for Rust: #[no_mangle] pub fn), or fix the route table", listNames(missing))
	}
	if len(badType) > 0 {
		return nil, fmt.Errorf("the module's _routes names entrypoints that take or return values: %s; a WAGI entrypoint takes none, like _start", listNames(badType))
	}
	return table, nil
}

// listNames joins names, at most maxListedImports of them.
func listNames(names []string) string {
	if len(names) > maxListedImports {
		return strings.Join(names[:maxListedImports], ", ") + fmt.Sprintf(" and %d more", len(names)-maxListedImports)
	}
	return strings.Join(names, ", ")
}

// callEntry runs one request in a fresh instance: _start as usual, or,
// for a named entrypoint, the instance without _start and then the export.
func callEntry(ctx context.Context, rt wazero.Runtime, compiled wazero.CompiledModule, cfg wazero.ModuleConfig, entry string) error {
	if entry == defaultEntry {
		mod, err := rt.InstantiateModule(ctx, compiled, cfg)
		if mod != nil {
			mod.Close(context.Background())
		}
		return err
	}
	mod, err := rt.InstantiateModule(ctx, compiled, cfg.WithStartFunctions())
	if err != nil {
		return err
	}
	defer mod.Close(context.Background())
	_, err = mod.ExportedFunction(entry).Call(ctx)
	return err
}
