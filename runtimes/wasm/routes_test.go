package wasm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/fungi-go/fungi/internal/wasmasm"
)

// routesGuest describes a hand-assembled WAGI module with named
// entrypoints, as Rust's `#[no_mangle] pub fn` exports them: _start and
// each entrypoint print a CGI answer naming themselves, then the whole
// environment they were given (NUL-separated, as environ_get hands it
// over); _routes prints routes.
type routesGuest struct {
	routes string
	// entries are the exports besides _start and _routes.
	entries []string
	// routesLoops makes _routes spin forever; routesFloods makes it print
	// 1 KiB a thousand times.
	routesLoops, routesFloods bool
}

// Addresses in the guest's memory (two pages).
const (
	rgIOV     = 0      // iovec for fd_write, nwritten at 8
	rgSizes   = 16     // environ_sizes_get: count at 16, size at 20
	rgText    = 0x100  // the texts the functions print
	rgEnvPtrs = 0x1000 // environ_get's pointer array
	rgEnvBuf  = 0x8000 // environ_get's strings
)

func (g routesGuest) bytes() []byte {
	store := []byte{0x36, 2, 0} // i32.store
	// Imports: 0 fd_write, 1 environ_sizes_get, 2 environ_get. Defined:
	// 3 write(ptr, len), 4 dumpEnv, 5 _start, 6 _routes, 7.. entries.
	imp := func(name string, typ byte) []byte {
		return Cat(Str("wasi_snapshot_preview1"), Str(name), []byte{0x00, typ})
	}
	var data [][]byte
	addr := int32(rgText)
	text := func(s string) (int32, int32) {
		a := addr
		data = append(data, Cat([]byte{0}, I32(a), End, Str(s)))
		addr += int32(len(s))
		return a, int32(len(s))
	}
	printer := func(name string) []byte {
		a, n := text("content-type: text/plain\n\nentry " + name + "\n")
		return FuncBody([]byte{0}, Cat(I32(a), I32(n), Call(3), Call(4), End))
	}
	write := FuncBody([]byte{0}, Cat(
		I32(rgIOV), LocalGet(0), store, I32(rgIOV+4), LocalGet(1), store,
		I32(1), I32(rgIOV), I32(1), I32(rgIOV+8), Call(0), Drop, End))
	dumpEnv := FuncBody([]byte{0}, Cat(
		I32(rgSizes), I32(rgSizes+4), Call(1), Drop,
		I32(rgEnvPtrs), I32(rgEnvBuf), Call(2), Drop,
		I32(rgEnvBuf), LoadAt(rgSizes+4), Call(3), End))
	var routes []byte
	switch {
	case g.routesLoops:
		routes = FuncBody([]byte{0}, Cat(Loop(), End))
	case g.routesFloods:
		routes = FuncBody([]byte{1, 1, 0x7f}, Cat(Repeat(0, 1000, I32(rgEnvBuf), I32(1024), Call(3)), End))
	default:
		a, n := text(g.routes)
		routes = FuncBody([]byte{0}, Cat(I32(a), I32(n), Call(3), End))
	}
	funcs := [][]byte{{3}, {2}, {2}, {2}}
	bodies := [][]byte{write, dumpEnv, printer("_start"), routes}
	exports := [][]byte{
		Cat(Str("memory"), []byte{0x02, 0}),
		Cat(Str("_start"), []byte{0x00, 5}),
		Cat(Str("_routes"), []byte{0x00, 6}),
	}
	for i, e := range g.entries {
		funcs = append(funcs, []byte{2})
		bodies = append(bodies, printer(e))
		exports = append(exports, Cat(Str(e), []byte{0x00, byte(7 + i)}))
	}
	return Cat(CoreHeader,
		Section(1, Vec(4,
			[]byte{0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f},
			[]byte{0x60, 2, 0x7f, 0x7f, 1, 0x7f},
			[]byte{0x60, 0, 0},
			[]byte{0x60, 2, 0x7f, 0x7f, 0})...),
		Section(2, Vec(3, imp("fd_write", 0), imp("environ_sizes_get", 1), imp("environ_get", 1))...),
		Section(3, Vec(len(funcs), funcs...)...),
		Section(5, Vec(1, []byte{0x00, 2})...),
		Section(7, Vec(len(exports), exports...)...),
		Section(10, Vec(len(bodies), bodies...)...),
		Section(11, Vec(len(data), data...)...),
	)
}

// startRoutesGuest pulls and starts g as a service with cfg's limits.
func startRoutesGuest(t *testing.T, g routesGuest, cfg Config) (*running, error) {
	t.Helper()
	wasmPath := filepath.Join(t.TempDir(), "routes.wasm")
	if err := os.WriteFile(wasmPath, g.bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return startModule(t, cfg, wasmPath, nil, nil)
}

// TestWAGIRoutes serves a module that exports _routes: each request runs
// the entrypoint of the route it matches, with X_MATCHED_ROUTE,
// SCRIPT_NAME and PATH_INFO set from that route; a wildcard matches its
// own path and those below it, not a longer name; of several matching
// routes the one declared last wins, as WAGI defines; a path no route
// matches runs _start.
func TestWAGIRoutes(t *testing.T) {
	g := routesGuest{
		routes:  "/hello hello\n\n/goodbye/... goodbye\n/goodbye/hello/... hello\n/a/b/... hello\n/a/... goodbye\n/main _start\n",
		entries: []string{"hello", "goodbye"},
	}
	s, err := startRoutesGuest(t, g, DefaultConfig(""))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, entry, matched, script, info string
	}{
		{"/hello", "hello", "/hello", "/hello", ""},
		{"/hello/x", "_start", "/...", "", "/hello/x"}, // an exact route has no subpaths
		{"/goodbye", "goodbye", "/goodbye/...", "/goodbye", ""},
		{"/goodbye/x/y", "goodbye", "/goodbye/...", "/goodbye", "/x/y"},
		{"/goodbyex", "_start", "/...", "", "/goodbyex"},
		{"/goodbye/hello/z", "hello", "/goodbye/hello/...", "/goodbye/hello", "/z"},
		{"/a/b/c", "goodbye", "/a/...", "/a", "/b/c"}, // declared last, so it wins over /a/b/...
		{"/main", "_start", "/main", "/main", ""},
		{"/", "_start", "/...", "", "/"},
	} {
		status, body, _ := get(t, s.base+c.path+"?q=1")
		if status != 200 || !strings.HasPrefix(body, "entry "+c.entry+"\n") {
			t.Errorf("GET %s: %d %.40q, want 200 from %s; log:\n%s", c.path, status, body, c.entry, s.log)
			continue
		}
		for _, want := range []string{
			"X_MATCHED_ROUTE=" + c.matched + "\x00",
			"SCRIPT_NAME=" + c.script + "\x00",
			"PATH_INFO=" + c.info + "\x00",
			"QUERY_STRING=q=1\x00",
		} {
			if !strings.Contains(body, "\x00"+want) && !strings.Contains(body, "\n"+want) {
				t.Errorf("GET %s: the environment lacks %q", c.path, want)
			}
		}
	}
	if !strings.Contains(s.log.String(), "route /goodbye/... runs goodbye") {
		t.Errorf("the log does not list the routes:\n%s", s.log)
	}
}

// TestWAGIRoutesRefused checks that a module whose _routes cannot give a
// usable table is refused at start, saying why: an entrypoint it does not
// export, a line that is not `PATH ENTRYPOINT`, no route at all, output
// past the bound, and a _routes that never returns.
func TestWAGIRoutesRefused(t *testing.T) {
	cfg := DefaultConfig("")
	cfg.RequestTimeout = time.Second
	for _, c := range []struct {
		name string
		g    routesGuest
		want string
	}{
		{"missing entrypoints", routesGuest{routes: "/a hello\n/b nothere\n/c gone\n", entries: []string{"hello"}},
			"the module's _routes names entrypoints it does not export: nothere, gone"},
		{"three fields", routesGuest{routes: "/a hello extra\n", entries: []string{"hello"}},
			"is not `PATH ENTRYPOINT`"},
		{"not a path", routesGuest{routes: "a hello\n", entries: []string{"hello"}},
			`the path "a" does not start with /`},
		{"empty", routesGuest{routes: "\n\n"}, "it printed no route"},
		{"flood", routesGuest{routesFloods: true}, "the module's _routes printed more than 64 KiB"},
		{"loop", routesGuest{routesLoops: true}, "the module's _routes did not return within 1s"},
	} {
		_, err := startRoutesGuest(t, c.g, cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: start answered %v, want %q", c.name, err, c.want)
		}
	}
}
