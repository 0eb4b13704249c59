// Package component runs WebAssembly components (the Component Model, WASI
// 0.2) on wazero: it decodes a component, links its core modules, and serves
// the WASI 0.2 interfaces fungi provides, so that a component built by the
// ordinary toolchains (Rust wasm32-wasip2, TinyGo, jco, ...) runs either as
// an HTTP handler (wasi:http/incoming-handler, a fresh instance per request,
// as `wasmtime serve` does) or as a command (wasi:cli/run).
//
// Interfaces served, in every 0.2.x version a component names (one binary
// may mix 0.2.0 and 0.2.3): wasi:io/{error,poll,streams},
// wasi:clocks/{wall-clock,monotonic-clock}, wasi:random/{random,insecure,
// insecure-seed}, wasi:cli/{environment,exit,stdin,stdout,stderr,
// terminal-input,terminal-output,terminal-stdin,terminal-stdout,
// terminal-stderr}, wasi:filesystem/{types,preopens},
// wasi:sockets/{network,instance-network,tcp,tcp-create-socket,udp,
// udp-create-socket,ip-name-lookup} and wasi:http/{types,outgoing-handler}.
// A component importing anything else is refused by Compile with the list
// of what is missing.
//
// Sockets: denied unless Config.Sockets allows them (see SocketPolicy): a
// guest listens only on the ports it maps, connects only where it lists.
//
// Files: each Preopen is opened with os.OpenRoot, so every path a guest
// names resolves beneath it; "..", absolute paths and symlinks (the guest's
// own included) cannot lead out. Stdio is never a terminal.
//
// Outbound HTTP: wasi:http/outgoing-handler answers HTTP-request-denied
// unless Config.Outbound allows the target (public addresses, or the
// names, addresses and networks it lists; see OutboundPolicy).
package component

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"

	bin "github.com/fungi-go/fungi/runtimes/wasm/component/internal/binary"
)

// IsComponent reports whether bin is a component rather than a core module.
func IsComponent(b []byte) bool { return bin.IsComponent(b) }

// Kind is what a component can be run as.
type Kind int

const (
	// KindNone exports neither an HTTP handler nor a command.
	KindNone Kind = iota
	// KindHTTP exports wasi:http/incoming-handler.
	KindHTTP
	// KindCommand exports wasi:cli/run.
	KindCommand
)

func (k Kind) String() string {
	switch k {
	case KindHTTP:
		return "wasi:http/proxy (incoming-handler)"
	case KindCommand:
		return "wasi:cli/command (run)"
	}
	return "neither an HTTP handler nor a command"
}

// Worlds names the component worlds fungi serves, for `info runtimes`.
const Worlds = "wasi:http/proxy@0.2.x (incoming-handler, served per request), wasi:cli/command@0.2.x (run, as a job)"

// Preopen is a host folder the guest sees at GuestPath; the guest cannot
// reach outside it (every path resolves beneath it, symlinks included).
type Preopen struct {
	HostPath  string
	GuestPath string
	ReadOnly  bool
}

// Config is what one run or one served request sees.
type Config struct {
	// Env is the whole environment the guest sees (wasi:cli/environment).
	Env map[string]string
	// Args is the argument list, program name first.
	Args []string
	// Stdin is read by wasi:cli/stdin; nil reads as empty.
	Stdin io.Reader
	// Stdout and Stderr receive the guest's output (the service log); nil discards.
	Stdout, Stderr io.Writer
	// Preopens are the folders wasi:filesystem/preopens offers.
	Preopens []Preopen
	// Outbound says where wasi:http/outgoing-handler may send requests;
	// nil refuses every request (HTTP-request-denied).
	Outbound *OutboundPolicy
	// Sockets says what wasi:sockets may listen on, connect to and look
	// up; nil denies every bind, connect and lookup (access-denied).
	Sockets *SocketPolicy
	// HostMemoryLimit bounds, in bytes, what the host keeps on one
	// instance's behalf (header fields, buffered bodies, stream buffers,
	// handles, directory listings); going over traps the instance with a
	// HostMemoryError. Zero takes a quarter of the runtime's linear-memory limit,
	// so that wasm.memoryLimitMB bounds both (see hostShare).
	HostMemoryLimit int64
}

// Component is a compiled component, ready to be instantiated any number of
// times. It is safe for concurrent use.
type Component struct {
	rt        wazero.Runtime
	modules   []wazero.CompiledModule
	host      wazero.CompiledModule
	hostSpecs []hostSpec
	tables    int // component instances inside, each with a handle table
	exports   map[string]any
	imports   []string
	kind      Kind
	handle    *cfunc
	run       *cfunc
	memLimit  int64 // the runtime's linear-memory limit, in bytes
}

// CompileOption adjusts Compile.
type CompileOption func(*compileOptions)

type compileOptions struct {
	checkCore func([]byte) error
}

// WithCoreModuleCheck runs check on each core module before wazero decodes
// it (wazero allocates by the counts it reads, so a caller that bounds them
// for plain modules should bound the component's modules the same way).
func WithCoreModuleCheck(check func(module []byte) error) CompileOption {
	return func(o *compileOptions) { o.checkCore = check }
}

// Compile decodes and links bin and compiles its core modules in rt (use a
// runtime with a compilation cache to compile each module once). It refuses a
// component that imports anything fungi does not provide, listing what is
// missing. rt's memory limit and close-on-context-done settings apply.
func Compile(ctx context.Context, rt wazero.Runtime, b []byte, opts ...CompileOption) (*Component, error) {
	var o compileOptions
	for _, opt := range opts {
		opt(&o)
	}
	// A WASI 0.3 component does not decode or link as 0.2 (async lifts,
	// streams, futures, 0.3 interfaces); when it fails, say what it is.
	refuse := func(err error) error {
		if iface := wasi03Import(b); iface != "" {
			return fmt.Errorf("this is a WASI 0.3 component (it imports %s): fungi runs WASI 0.2 components; rebuild it for WASI 0.2 (Rust: --target wasm32-wasip2), or run it with a WASI 0.3 runtime. In detail: %w", iface, err)
		}
		return err
	}
	dc, err := bin.Decode(b)
	if err != nil {
		return nil, refuse(fmt.Errorf("malformed component: %w", err))
	}
	l := &linker{missing: map[string][]string{}}
	top := &scope{}
	if err := l.linkTop(dc, top); err != nil {
		if merr := l.missingError(); merr != nil {
			return nil, refuse(merr)
		}
		return nil, refuse(fmt.Errorf("link component: %w", err))
	}
	if err := l.missingError(); err != nil {
		return nil, refuse(err)
	}
	c := &Component{rt: rt, hostSpecs: l.hostFuncs, tables: l.tables, exports: top.exports, imports: l.imports}
	c.classify()
	if c.kind == KindNone {
		return nil, fmt.Errorf("the component exports %s; fungi runs a component that exports wasi:http/incoming-handler (served) or wasi:cli/run (a job)", c.exportList())
	}
	ok := false
	defer func() {
		if !ok {
			_ = c.Close(context.Background())
		}
	}()
	if c.memLimit, err = runtimeMemoryLimit(ctx, rt); err != nil {
		return nil, err
	}
	if c.host, err = c.compileHost(ctx, rt); err != nil {
		return nil, fmt.Errorf("compile the WASI host module: %w", err)
	}
	for i, pm := range l.plan {
		if o.checkCore != nil {
			if err := o.checkCore(pm.bytes); err != nil {
				return nil, fmt.Errorf("malformed component: core module %d: %w", i, err)
			}
		}
		cm, err := rt.CompileModule(ctx, pm.bytes)
		if err != nil {
			return nil, fmt.Errorf("compile core module %d of the component: %w", i, err)
		}
		c.modules = append(c.modules, cm)
	}
	ok = true
	return c, nil
}

// wasi03 finds an interface name of WASI 0.3 (wasi:cli/run@0.3.0-rc-...).
var wasi03 = regexp.MustCompile(`wasi:[a-z][a-z0-9-]*/[a-z][a-z0-9-]*@0\.3\.[0-9A-Za-z.+-]*`)

// wasi03Import names a WASI 0.3 interface the component refers to, or is
// empty. WASI 0.3 components use async lifts, streams and futures, which
// fungi's decoder refuses as malformed; naming the version says what the
// file is and what would run it.
func wasi03Import(b []byte) string {
	return string(wasi03.Find(b))
}

func (c *Component) classify() {
	for name, e := range c.exports {
		inst, ok := e.(*cinstance)
		if !ok {
			continue
		}
		iface, version := splitVersion(name)
		if !strings.HasPrefix(version, "0.2.") {
			continue
		}
		switch iface {
		case "wasi:http/incoming-handler":
			if f, ok := inst.exports["handle"].(*cfunc); ok && f.lift != nil && len(f.typ.params) == 2 && len(f.typ.results) == 0 {
				c.handle, c.kind = f, KindHTTP
			}
		case "wasi:cli/run":
			if f, ok := inst.exports["run"].(*cfunc); ok && f.lift != nil && len(f.typ.params) == 0 && len(f.typ.results) == 1 && c.kind == KindNone {
				c.run, c.kind = f, KindCommand
			}
		}
	}
}

func (c *Component) exportList() string {
	var names []string
	for n := range c.exports {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}

// Kind says whether the component is served (HTTP) or run (command).
func (c *Component) Kind() Kind { return c.kind }

// Imports lists the interfaces the component imports, versions included.
func (c *Component) Imports() []string { return append([]string(nil), c.imports...) }

// Close releases the compiled modules.
func (c *Component) Close(ctx context.Context) error {
	var errs []error
	for _, m := range c.modules {
		errs = append(errs, m.Close(ctx))
	}
	if c.host != nil {
		errs = append(errs, c.host.Close(ctx))
	}
	return errors.Join(errs...)
}

// Run runs a command component (wasi:cli/run) to its end and returns its exit
// code: 0 when run returns ok, 1 when it returns err, or the code it passed
// to wasi:cli/exit. err is set when the guest traps or cannot start.
func (c *Component) Run(ctx context.Context, cfg Config) (exitCode int, err error) {
	if c.kind != KindCommand {
		return 0, fmt.Errorf("the component is %s, not a command", c.kind)
	}
	w, err := newWASI(&cfg)
	if err != nil {
		return 0, err
	}
	defer w.close()
	inst, err := c.instantiate(ctx, w)
	if err != nil {
		return 0, err
	}
	defer inst.close()
	res, err := inst.call(c.run, nil)
	if code, ok := exitCode0(err); ok {
		return code, nil
	}
	if err != nil {
		return 0, fmt.Errorf("the command trapped: %w", err)
	}
	if v, _ := res[0].(Variant); v.Case != 0 {
		return 1, nil
	}
	return 0, nil
}

// Interfaces lists the WASI interfaces fungi serves, for `info runtimes` and
// `peer capability`; each is served in every 0.2.x version.
func Interfaces() []string {
	out := make([]string, 0, len(hostFuncs))
	for name := range hostFuncs {
		out = append(out, name+"@0.2.x")
	}
	sort.Strings(out)
	return out
}
