// Package wasm is the wasm runtime provider: WASI preview 1 core modules run
// by the embedded wazero engine in HTTP handler mode (CGI/1.1, as WAGI does).
// No external program is needed.
package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/fungi-go/fungi/internal/atomicfile"
	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
	"github.com/fungi-go/fungi/runtimes/wasm/component"
	"github.com/fungi-go/fungi/runtimes/wasm/internal/rootfs"
)

// maxModuleBytes is the largest module the provider accepts from any
// source, whatever the node's configuration: the whole module is held in
// memory while it is checked and compiled. A variable only so tests can
// stream past it without sending 256 MiB.
var maxModuleBytes = 256 << 20

func errModuleTooLarge(size int64) error {
	return fmt.Errorf("the module is %d bytes, more than the %d MiB fungi accepts for a wasm module; it was refused", size, maxModuleBytes>>20)
}

// Config sets where the provider keeps its caches and the limits every
// request runs under.
type Config struct {
	// CacheDir holds downloaded and shipped modules and wazero's compiled code.
	CacheDir string
	// MemoryLimitMB caps one instance's linear memory.
	MemoryLimitMB uint32
	// RequestTimeout ends a request that runs longer (504).
	RequestTimeout time.Duration
	// MaxConcurrency is how many requests one service runs at once; more
	// wait for a slot (see MaxQueued and QueueWait), then are answered 503.
	MaxConcurrency int
	// MaxQueued is how many requests, and how many connections over
	// MaxConnections, wait for a place at one service at once; 0 means
	// 1024, below 0 none. One more is answered 503 at once.
	MaxQueued int
	// QueueWait is how long a request waits for a slot, or a connection
	// for a place, before it is answered 503; 0 means 10 seconds.
	QueueWait time.Duration
	// HTTPClient downloads url sources; nil means http.DefaultClient.
	HTTPClient *http.Client
	// DownloadTimeout ends a source.url download that takes longer.
	DownloadTimeout time.Duration
	// DownloadIdleTimeout ends a download when no bytes arrive for this long
	// (waiting for the answer included).
	DownloadIdleTimeout time.Duration
	// IdleTimeout closes a service's keep-alive connection that carries no
	// request for this long; 0 means a minute.
	IdleTimeout time.Duration
	// MaxConnections is how many connections one service holds open at
	// once; one more is answered 503 and closed. 0 means 128.
	MaxConnections int
}

// DefaultConfig returns the limits a node uses unless its config says otherwise.
func DefaultConfig(cacheDir string) Config {
	return Config{CacheDir: cacheDir, MemoryLimitMB: 256, RequestTimeout: 30 * time.Second, MaxConcurrency: 16,
		DownloadTimeout: 10 * time.Minute, DownloadIdleTimeout: 30 * time.Second,
		IdleTimeout: defaultIdleTimeout, MaxConnections: defaultMaxConnections}
}

// Provider runs wasm services. The wazero runtime is made on first use, so an
// idle node with no wasm service running pays nothing for it.
type Provider struct {
	cfg    Config
	memory *memoryPool // nil: wazero's own allocation (benchmark baseline)
	// keepSegments turns the data segment merge off (benchmark baseline).
	keepSegments bool

	running atomic.Int32 // instances started and not yet stopped
	queued  atomic.Int32 // requests waiting for a slot, all services'

	once    sync.Once
	initErr error
	runtime wazero.Runtime
	// wasiFuncs are the WASI preview 1 functions the runtime provides.
	wasiFuncs map[string]bool
}

var _ runtimes.Provider = (*Provider)(nil)

// New returns a provider; it does no work until a service needs it.
func New(cfg Config) *Provider {
	if cfg.MaxConcurrency <= 0 {
		cfg.MaxConcurrency = 16
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.MemoryLimitMB == 0 {
		cfg.MemoryLimitMB = 256
	}
	if cfg.DownloadTimeout <= 0 {
		cfg.DownloadTimeout = 10 * time.Minute
	}
	if cfg.DownloadIdleTimeout <= 0 {
		cfg.DownloadIdleTimeout = 30 * time.Second
	}
	return &Provider{cfg: cfg, memory: newMemoryPool(4, defaultPoolBudget)}
}

// Runtime implements runtimes.Provider.
func (p *Provider) Runtime() string { return manifest.RuntimeWasmtime }

// Capability implements runtimes.Provider.
func (p *Provider) Capability(context.Context) *messages.RuntimeCapability {
	return &messages.RuntimeCapability{
		Name:             manifest.RuntimeWasmtime,
		Available:        true,
		Engine:           "wazero " + wazeroVersion(),
		Detail:           "WASI preview 1 modules in HTTP handler mode (CGI/1.1, WAGI); components: " + component.Worlds + "; WASI 0.2.x interfaces: " + strings.Join(component.Interfaces(), ", ") + "; embedded, no external program",
		ManifestRuntimes: []string{manifest.RuntimeWasmtime, "wasm"},
		WasmLimits: &messages.WasmLimits{
			MemoryLimitMb:    p.cfg.MemoryLimitMB,
			RequestTimeoutMs: uint32(p.cfg.RequestTimeout / time.Millisecond),
			MaxConcurrency:   uint32(p.cfg.MaxConcurrency),
		},
	}
}

func wazeroVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				return d.Version
			}
		}
	}
	return "(unknown version)"
}

func (p *Provider) init() error {
	p.once.Do(func() {
		ctx := context.Background()
		cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(p.cfg.CacheDir, "compiled"))
		if err != nil {
			p.initErr = fmt.Errorf("wasm compilation cache: %w", err)
			return
		}
		rc := wazero.NewRuntimeConfig().
			WithCompilationCache(cache).
			WithCloseOnContextDone(true).
			WithMemoryLimitPages(p.cfg.MemoryLimitMB * 16) // 64 KiB pages
		p.runtime = wazero.NewRuntimeWithConfig(ctx, rc)
		wasi_snapshot_preview1.MustInstantiate(ctx, p.runtime)
		p.wasiFuncs = map[string]bool{}
		for name := range p.runtime.Module(wasiModule).ExportedFunctionDefinitions() {
			p.wasiFuncs[name] = true
		}
	})
	return p.initErr
}

// Close releases the wazero runtime.
func (p *Provider) Close(ctx context.Context) error {
	if p.runtime != nil {
		return p.runtime.Close(ctx)
	}
	return nil
}

// Fetch implements runtimes.Provider: it reads, downloads or takes the
// shipped module, verifies it, stores it under its hash, and compiles it so
// that the first start finds the compiled code in the cache.
func (p *Provider) Fetch(ctx context.Context, req runtimes.FetchRequest, progress func(*messages.PullProgress)) (runtimes.Artifact, error) {
	src := req.Manifest.Spec.Source
	var bin []byte
	var err error
	switch {
	case req.Shipped != nil:
		if len(req.Shipped) > maxModuleBytes {
			return runtimes.Artifact{}, errModuleTooLarge(int64(len(req.Shipped)))
		}
		bin = req.Shipped
	case src.File != "":
		path := src.File
		if !filepath.IsAbs(path) {
			path = filepath.Join(req.ManifestDir, path)
		}
		progress(&messages.PullProgress{Message: "reading " + path})
		bin, err = readModuleFile(path)
		if err != nil {
			return runtimes.Artifact{}, fmt.Errorf("source.file: %w (paths are relative to the manifest's folder)", err)
		}
	case src.URL != "":
		bin, err = p.download(ctx, src.URL, src.SHA256, progress)
		if err != nil {
			return runtimes.Artifact{}, err
		}
	default:
		return runtimes.Artifact{}, errors.New("the manifest names no wasm source (source.file or source.url)")
	}
	sum := sha256.Sum256(bin)
	digest := hex.EncodeToString(sum[:])
	if src.SHA256 != "" && src.SHA256 != digest {
		return runtimes.Artifact{}, fmt.Errorf("source.sha256 mismatch: the manifest says %s but the module's SHA-256 is %s; the module was refused", src.SHA256, digest)
	}
	isComponent := component.IsComponent(bin)
	if !isComponent {
		if err := checkCoreModule(bin); err != nil {
			return runtimes.Artifact{}, err
		}
	}
	path := filepath.Join(p.cfg.CacheDir, "modules", digest+".wasm")
	if _, err := os.Stat(path); err != nil {
		if err := atomicfile.Write(path, bin, 0o644); err != nil {
			return runtimes.Artifact{}, err
		}
	}
	if isComponent {
		progress(&messages.PullProgress{Message: fmt.Sprintf("compiling component %s (%d bytes)", digest[:12], len(bin))})
		c, err := p.compileComponent(ctx, bin)
		if err != nil {
			return runtimes.Artifact{}, err
		}
		progress(&messages.PullProgress{Message: fmt.Sprintf("component %s: %s", digest[:12], c.Kind())})
		c.Close(ctx)
		debug.FreeOSMemory()
		return runtimes.Artifact{Ref: path, SHA256: digest}, nil
	}
	progress(&messages.PullProgress{Message: fmt.Sprintf("compiling %s (%d bytes)", digest[:12], len(bin))})
	compiled, err := p.compile(ctx, bin)
	if err != nil {
		return runtimes.Artifact{}, err
	}
	compiled.Close(ctx)
	// Compiling a large module leaves well over 100 MB of garbage; give it
	// back now rather than keep an idle node at that size.
	debug.FreeOSMemory()
	return runtimes.Artifact{Ref: path, SHA256: digest}, nil
}

// readModuleFile reads a module from disk, refusing one over the size cap
// before reading it (and again while reading, should the file grow).
func readModuleFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > int64(maxModuleBytes) {
		return nil, errModuleTooLarge(fi.Size())
	}
	bin, err := io.ReadAll(io.LimitReader(f, int64(maxModuleBytes)+1))
	if err != nil {
		return nil, err
	}
	if len(bin) > maxModuleBytes {
		return nil, errModuleTooLarge(int64(len(bin)))
	}
	return bin, nil
}

// checkCoreModule refuses what wazero cannot run, with a message that says
// what the file is.
func checkCoreModule(bin []byte) error {
	if len(bin) < 8 || !bytes.Equal(bin[:4], []byte("\x00asm")) {
		return errors.New("the artifact is not a WebAssembly binary (no \\0asm header)")
	}
	switch {
	case bytes.Equal(bin[4:8], []byte{1, 0, 0, 0}):
		return nil
	case bin[6] == 1 && bin[7] == 0:
		return fmt.Errorf("the artifact is a WebAssembly component of layer/version %x that fungi does not know", bin[4:8])
	default:
		return fmt.Errorf("the artifact is WebAssembly binary version %x, which fungi does not know", bin[4:8])
	}
}

func (p *Provider) compile(ctx context.Context, bin []byte) (wazero.CompiledModule, error) {
	if err := p.init(); err != nil {
		return nil, err
	}
	if len(bin) > maxModuleBytes {
		return nil, errModuleTooLarge(int64(len(bin)))
	}
	// wazero's decoder allocates by the counts it reads; a hostile module
	// must be refused before it gets there.
	if err := checkModuleBounds(bin); err != nil {
		return nil, fmt.Errorf("the module is malformed and was refused (%w); rebuild it, or check where it came from", err)
	}
	merged := bin
	if !p.keepSegments {
		var err error
		if merged, _, err = mergeDataSegments(bin); err != nil {
			return nil, fmt.Errorf("the module is malformed and was refused (%w); rebuild it, or check where it came from", err)
		}
	}
	compiled, err := p.runtime.CompileModule(ctx, merged)
	if err != nil {
		return nil, fmt.Errorf("the module does not compile: %w", err)
	}
	if err := checkModuleShape(compiled, p.wasiFuncs); err != nil {
		compiled.Close(ctx)
		return nil, err
	}
	return compiled, nil
}

// download fetches url once: a later pull of the same url finds it in the
// cache (when the manifest pins a hash, only if the hash matches). The
// download has an overall deadline, an idle deadline that any received
// bytes push back, and the module size cap.
func (p *Provider) download(ctx context.Context, url, want string, progress func(*messages.PullProgress)) ([]byte, error) {
	key := sha256.Sum256([]byte(url))
	cached := filepath.Join(p.cfg.CacheDir, "downloads", hex.EncodeToString(key[:])+".wasm")
	if bin, err := readModuleFile(cached); err == nil {
		sum := sha256.Sum256(bin)
		if want == "" || hex.EncodeToString(sum[:]) == want {
			progress(&messages.PullProgress{Message: "using the cached download of " + url})
			return bin, nil
		}
	}
	progress(&messages.PullProgress{Message: "downloading " + url})
	client := p.cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DownloadTimeout)
	defer cancel()
	// The idle timer runs from the request on: it covers a server that
	// never answers as well as one that stops sending halfway.
	var stalled atomic.Bool
	idle := time.AfterFunc(p.cfg.DownloadIdleTimeout, func() {
		stalled.Store(true)
		cancel()
	})
	defer idle.Stop()
	fail := func(err error) error {
		switch {
		case stalled.Load():
			return fmt.Errorf("download %s: nothing arrived for %s, so it was given up; check that the server is up, then pull again", url, p.cfg.DownloadIdleTimeout)
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return fmt.Errorf("download %s did not finish within %s, so it was given up; pull again, or download the module and use source.file", url, p.cfg.DownloadTimeout)
		default:
			return fmt.Errorf("download %s: %w", url, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("source.url %q: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: the server answered %s", url, resp.Status)
	}
	if resp.ContentLength > int64(maxModuleBytes) {
		return nil, fmt.Errorf("download %s: %w", url, errModuleTooLarge(resp.ContentLength))
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	pr := &progressReader{r: resp.Body, total: resp.ContentLength, report: progress, what: "downloading " + url,
		received: func() { idle.Reset(p.cfg.DownloadIdleTimeout) }}
	n, err := io.Copy(&buf, io.LimitReader(pr, int64(maxModuleBytes)+1))
	if err != nil {
		return nil, fail(err)
	}
	if n > int64(maxModuleBytes) {
		return nil, fmt.Errorf("download %s: the server sent more than %d MiB, the most fungi accepts for a wasm module; it was refused", url, maxModuleBytes>>20)
	}
	if err := atomicfile.Write(cached, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type progressReader struct {
	r        io.Reader
	n        int64
	total    int64
	last     time.Time
	report   func(*messages.PullProgress)
	what     string
	received func() // called whenever bytes arrive
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.n += int64(n)
	if n > 0 && pr.received != nil {
		pr.received()
	}
	if now := time.Now(); now.Sub(pr.last) > 200*time.Millisecond || err == io.EOF {
		pr.last = now
		pr.report(&messages.PullProgress{Message: pr.what, Current: pr.n, Total: pr.total})
	}
	return n, err
}

// Start implements runtimes.Provider.
func (p *Provider) Start(ctx context.Context, spec runtimes.InstanceSpec) (runtimes.Instance, error) {
	bin, err := readModuleFile(spec.Artifact.Ref)
	if err != nil {
		return nil, fmt.Errorf("the module is missing from the cache (%w); pull the service again", err)
	}
	if component.IsComponent(bin) {
		return p.startComponent(ctx, spec, bin)
	}
	if len(spec.Ports) > 1 {
		return nil, fmt.Errorf("a wasm service serves HTTP on exactly one port; %s has %d", spec.Name, len(spec.Ports))
	}
	compiled, err := p.compile(ctx, bin)
	if err != nil {
		return nil, err
	}
	base, mounts, err := p.moduleConfig(spec)
	if err != nil {
		compiled.Close(ctx)
		return nil, err
	}
	if len(spec.Ports) == 0 {
		return p.startModuleJob(spec, compiled, base, mounts)
	}
	routes, err := p.loadRoutes(ctx, compiled, base)
	if err != nil {
		compiled.Close(ctx)
		closeMounts(mounts)
		return nil, err
	}
	port := spec.Ports[0].HostPort
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
	if err != nil {
		compiled.Close(ctx)
		closeMounts(mounts)
		return nil, listenError(port, err)
	}
	h := &handler{
		p:        p,
		name:     spec.Name,
		compiled: compiled,
		base:     base,
		hostPort: port,
		log:      spec.Log,
		limiter:  p.newRequestLimiter(),
		timeout:  p.cfg.RequestTimeout,
		wagiArgs: len(spec.Manifest.Spec.Command) == 0,
		routes:   routes,
	}
	for _, r := range routes {
		fmt.Fprintf(spec.Log, "fungi: %s route %s runs %s\n", spec.Name, r.pattern, r.entry)
	}
	p.running.Add(1)
	inst := &instance{
		p:        p,
		server:   p.httpServer(observed(spec.Name, h)),
		compiled: compiled,
		mounts:   mounts,
		done:     make(chan struct{}),
	}
	go inst.serve(ln)
	fmt.Fprintf(spec.Log, "fungi: %s serving on http://127.0.0.1:%d\n", spec.Name, port)
	return inst, nil
}

// startModuleJob runs a command module once, as `wasmtime run` does: its
// stdout and stderr go to the service log, spec.stdin (if any) is its
// input, and how it ended (exit code or trap) is the instance's end.
func (p *Provider) startModuleJob(spec runtimes.InstanceSpec, compiled wazero.CompiledModule, base wazero.ModuleConfig, mounts []*rootfs.FS) (runtimes.Instance, error) {
	stdin, err := openStdin(spec)
	if err != nil {
		compiled.Close(context.Background())
		closeMounts(mounts)
		return nil, err
	}
	out := newJobOutput(spec.Log)
	cfg := base.WithStdout(out.stdout).WithStderr(out.stderr)
	if stdin != nil {
		cfg = cfg.WithStdin(stdin)
	}
	run := func(ctx context.Context) (int, error) {
		mod, err := p.runtime.InstantiateModule(ctx, compiled, cfg)
		if mod != nil {
			mod.Close(context.Background())
		}
		var exit *sys.ExitError
		switch {
		case err == nil:
			return 0, nil // _start returned without proc_exit
		case errors.As(err, &exit):
			return int(exit.ExitCode()), nil
		default:
			return 0, err
		}
	}
	return p.runJob(spec, out, "module, WASI preview 1", run, func() {
		compiled.Close(context.Background())
		closeMounts(mounts)
		if stdin != nil {
			stdin.Close()
		}
	}), nil
}

// jobStderr is where a job's stderr goes: the service log, or its own
// stream when the log keeps the two apart.
func jobStderr(log io.Writer) io.Writer {
	if s, ok := log.(interface{ Stderr() io.Writer }); ok {
		return s.Stderr()
	}
	return log
}

// openStdin opens a job's spec.stdin inside the service's data folder
// through an os.Root, so a link in the folder cannot feed it a file from
// elsewhere. No spec.stdin is nil: the job reads end of file at once.
func openStdin(spec runtimes.InstanceSpec) (*os.File, error) {
	if spec.Manifest.Spec.Stdin == "" {
		return nil, nil
	}
	name, err := manifest.StdinName(spec.Manifest.Spec.Stdin)
	if err != nil {
		return nil, fmt.Errorf("spec.stdin: %w", err)
	}
	if spec.DataDir == "" {
		return nil, errors.New("spec.stdin: this service has no data folder to read it from")
	}
	root, err := os.OpenRoot(spec.DataDir)
	if err != nil {
		return nil, fmt.Errorf("spec.stdin: open the data folder %s: %w", spec.DataDir, err)
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("spec.stdin: %s cannot be read from the service's data folder %s (%w); put the file there, then start the service again", name, spec.DataDir, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("spec.stdin: %s in %s is not a regular file; name a file", name, spec.DataDir)
	}
	return f, nil
}

// listenError says why the service's port could not be opened, by the
// cause the system gave, and what to do about it.
func listenError(port int, err error) error {
	var hint string
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		hint = "another program holds the port; stop it, or set another hostPort"
	case errors.Is(err, syscall.EACCES):
		hint = "this system does not let fungi open that port (ports below 1024 need privileges); set a hostPort of 1024 or above"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint = "the address is not available on this machine; check its loopback interface"
	default:
		hint = "check the hostPort in the manifest"
	}
	return fmt.Errorf("cannot listen on 127.0.0.1:%d: %w (%s)", port, err, hint)
}

// Remove implements runtimes.Provider: a wasm service leaves nothing in the
// runtime but its module in the content-addressed cache, which other
// services may share.
func (p *Provider) Remove(context.Context, string) error { return nil }

// moduleConfig is the part of every request's configuration that does not
// change between requests.
//
// Each mount is a rootfs, never wazero's WithDirMount: that one lets the host
// resolve the guest's paths, so symlinks lead out of the folder. The
// mounts' os.Roots are the instance's, closed when it stops.
func (p *Provider) moduleConfig(spec runtimes.InstanceSpec) (wazero.ModuleConfig, []*rootfs.FS, error) {
	fs := wazero.NewFSConfig()
	var mounts []*rootfs.FS
	for _, m := range spec.Mounts {
		open := rootfs.New
		if m.ReadOnly {
			open = rootfs.NewReadOnly
		}
		confined, err := open(m.HostPath)
		if err != nil {
			closeMounts(mounts)
			return nil, nil, fmt.Errorf("spec.mounts: %w", err)
		}
		mounts = append(mounts, confined)
		fs = fs.(sysfs.FSConfig).WithSysFSMount(confined, m.RuntimePath)
	}
	args := append([]string{spec.Name}, spec.Manifest.Spec.Command...)
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous, so requests can run side by side
		WithArgs(args...).
		WithStderr(spec.Log).
		WithFSConfig(fs).
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(cryptoRand{})
	for k, v := range spec.Manifest.Spec.Env {
		cfg = cfg.WithEnv(k, v)
	}
	return cfg, mounts, nil
}

func closeMounts(mounts []*rootfs.FS) {
	for _, m := range mounts {
		m.Close()
	}
}

type instance struct {
	p        *Provider
	stopOnce sync.Once
	server   *http.Server
	compiled wazero.CompiledModule                     // a module service
	closer   interface{ Close(context.Context) error } // a component service
	mounts   []*rootfs.FS
	done     chan struct{}
	err      error
}

func (i *instance) serve(ln net.Listener) {
	limited := i.p.limitConns(ln)
	if cl, ok := limited.(*connLimiter); ok {
		i.server.ConnState = cl.trackState
	}
	err := i.server.Serve(limited)
	if !errors.Is(err, http.ErrServerClosed) {
		i.err = err
	}
	close(i.done)
}

func (i *instance) Stop(ctx context.Context) error {
	err := i.server.Shutdown(ctx)
	if err != nil {
		i.server.Close()
	}
	<-i.done
	i.stopOnce.Do(func() {
		if i.compiled != nil {
			i.compiled.Close(context.Background())
		}
		if i.closer != nil {
			i.closer.Close(context.Background())
		}
		closeMounts(i.mounts)
		if i.p.running.Add(-1) == 0 && i.p.memory != nil {
			i.p.memory.drain()
		}
		debug.FreeOSMemory() // the compiled code and pooled memories are garbage now
	})
	return nil
}

func (i *instance) Done() <-chan struct{} { return i.done }
func (i *instance) Err() error            { return i.err }
