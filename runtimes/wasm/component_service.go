package wasm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/wasm/component"
)

// compileComponent decodes, links and compiles a component, refusing one
// that imports what fungi does not serve or exports neither a handler nor
// a command. Each core module is bounded as a plain module is.
func (p *Provider) compileComponent(ctx context.Context, bin []byte) (*component.Component, error) {
	if err := p.init(); err != nil {
		return nil, err
	}
	c, err := component.Compile(ctx, p.runtime, bin, component.WithCoreModuleCheck(checkModuleBounds))
	if err != nil {
		return nil, fmt.Errorf("the component was refused: %w", err)
	}
	return c, nil
}

// componentConfig is what every run or request of a component sees.
func componentConfig(spec runtimes.InstanceSpec) component.Config {
	cfg := component.Config{
		Env:      spec.Manifest.Spec.Env,
		Args:     append([]string{spec.Name}, spec.Manifest.Spec.Command...),
		Stdout:   spec.Log,
		Stderr:   spec.Log,
		Outbound: outboundPolicy(spec.Manifest.Spec.AllowOutboundHTTP),
		Sockets:  socketPolicy(spec),
	}
	for _, m := range spec.Mounts {
		cfg.Preopens = append(cfg.Preopens, component.Preopen{HostPath: m.HostPath, GuestPath: m.RuntimePath, ReadOnly: m.ReadOnly})
	}
	return cfg
}

// startComponent serves an HTTP component on the service's port, or runs a
// command component as a job.
func (p *Provider) startComponent(ctx context.Context, spec runtimes.InstanceSpec, bin []byte) (runtimes.Instance, error) {
	c, err := p.compileComponent(ctx, bin)
	if err != nil {
		return nil, err
	}
	for _, m := range spec.Mounts {
		if fi, err := os.Stat(m.HostPath); err != nil || !fi.IsDir() {
			c.Close(ctx)
			return nil, fmt.Errorf("spec.mounts: %s is not a folder fungi can open (%v)", m.HostPath, err)
		}
	}
	cfg := componentConfig(spec)
	switch c.Kind() {
	case component.KindHTTP:
		return p.serveComponent(ctx, spec, c, cfg)
	case component.KindCommand:
		stdin, err := openStdin(spec)
		if err != nil {
			c.Close(ctx)
			return nil, err
		}
		if stdin != nil {
			cfg.Stdin = stdin
		}
		out := newJobOutput(spec.Log)
		cfg.Stdout, cfg.Stderr = out.stdout, out.stderr
		run := func(ctx context.Context) (int, error) { return c.Run(ctx, cfg) }
		return p.runJob(spec, out, "component, wasi:cli/run", run, func() {
			c.Close(context.Background())
			if stdin != nil {
				stdin.Close()
			}
		}), nil
	}
	c.Close(ctx)
	return nil, errors.New("the component exports neither wasi:http/incoming-handler nor wasi:cli/run")
}

func (p *Provider) serveComponent(ctx context.Context, spec runtimes.InstanceSpec, c *component.Component, cfg component.Config) (runtimes.Instance, error) {
	if len(spec.Ports) != 1 {
		c.Close(ctx)
		return nil, fmt.Errorf("an HTTP component serves on exactly one port; %s has %d", spec.Name, len(spec.Ports))
	}
	port := spec.Ports[0].HostPort
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(port)))
	if err != nil {
		c.Close(ctx)
		return nil, listenError(port, err)
	}
	h := &componentHandler{
		p:       p,
		name:    spec.Name,
		inner:   c.Handler(cfg),
		limiter: p.newRequestLimiter(),
		timeout: p.cfg.RequestTimeout,
	}
	p.running.Add(1)
	inst := &instance{
		p:      p,
		server: p.httpServer(observed(spec.Name, h)),
		closer: c,
		done:   make(chan struct{}),
	}
	go inst.serve(ln)
	fmt.Fprintf(spec.Log, "fungi: %s (component, wasi:http) serving on http://127.0.0.1:%d\n", spec.Name, port)
	return inst, nil
}

// componentHandler puts the limits every wasm service has around a
// component's handler: requests at once (503), the request timeout (the
// component answers 504 itself) and pooled memory.
type componentHandler struct {
	p       *Provider
	name    string
	inner   http.Handler
	limiter *requestLimiter
	timeout time.Duration
}

func (h *componentHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, release, ok := h.p.admit(w, r, h.name, h.limiter, h.timeout)
	if !ok {
		return
	}
	defer release()
	h.inner.ServeHTTP(w, r.WithContext(ctx))
}

// admit is what every request to a wasm service, module or component,
// passes first: one of the service's slots, waited for in a bounded queue
// (else 503 with Retry-After), the request timeout, and pooled memory.
// release gives the slot back.
func (p *Provider) admit(w http.ResponseWriter, r *http.Request, name string, lim *requestLimiter, timeout time.Duration) (ctx context.Context, release func(), ok bool) {
	switch lim.acquire(r.Context()) {
	case admitted:
	case clientGone:
		return nil, nil, false // nobody is left to answer
	case queueFull:
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("fungi: %s is serving its limit of %d requests at once and %d more are waiting; try again", name, cap(lim.slots), lim.maxWaiting), http.StatusServiceUnavailable)
		return nil, nil, false
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("fungi: %s is serving its limit of %d requests at once and none ended within %s; try again", name, cap(lim.slots), lim.wait), http.StatusServiceUnavailable)
		return nil, nil, false
	}
	// A guest may read its request body after it has begun its answer
	// (WAGI modules that echo their environment first do): without full
	// duplex the server, once the answer's head goes out, discards up to
	// 256 KiB of the unread body or fails the guest's reads. HTTP/2 is
	// full duplex already and says so with an error, which is fine.
	_ = http.NewResponseController(w).EnableFullDuplex()
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	if p.memory != nil {
		ctx = experimental.WithMemoryAllocator(ctx, p.memory)
	}
	return ctx, func() {
		cancel()
		lim.release()
		// With full duplex on, net/http drains a body the handler left
		// unread only after the handler returns, and that drain starts
		// its background read of the connection just before it reads
		// the next request over the same connection: "invalid
		// concurrent Body.Read call" (golang/go#68560), and a kept
		// connection that stops answering. Closing the body here, once
		// the guest is done with it and while the handler still runs,
		// drains it (up to 256 KiB; past that the server closes the
		// connection after the answer) while that is still safe.
		if r.Body != nil {
			_ = r.Body.Close()
		}
	}, true
}

// runJob runs a job once: run is the whole job, its result the exit code
// or the trap that ended it; cleanup releases what the job held once it has
// ended. The job's end is the instance's end, and its exit code reaches the
// service's state through JobExit (a trap through JobTrap).
func (p *Provider) runJob(spec runtimes.InstanceSpec, out *jobOutput, what string, run func(context.Context) (int, error), cleanup func()) runtimes.Instance {
	ctx, cancel := context.WithCancel(context.Background())
	if p.memory != nil {
		ctx = experimental.WithMemoryAllocator(ctx, p.memory)
	}
	j := &job{cancel: cancel, done: make(chan struct{})}
	p.running.Add(1)
	fmt.Fprintf(spec.Log, "fungi: %s (%s) started as a job\n", spec.Name, what)
	go func() {
		defer close(j.done)
		defer func() {
			cleanup()
			if p.running.Add(-1) == 0 && p.memory != nil {
				p.memory.drain()
			}
		}()
		code, err := run(ctx)
		j.mu.Lock()
		defer j.mu.Unlock()
		switch {
		case j.stopped:
		case err != nil:
			j.err = &JobTrap{Err: err}
			fmt.Fprintf(spec.Log, "%sfungi: %s: %v\n", out.lineBreak(), spec.Name, j.err)
		default:
			j.err = &JobExit{Code: code}
			fmt.Fprintf(spec.Log, "%sfungi: %s: the job exited with code %d\n", out.lineBreak(), spec.Name, code)
		}
	}()
	return j
}

// JobExit is how a job ended on its own: its exit code.
type JobExit struct{ Code int }

func (e *JobExit) Error() string { return fmt.Sprintf("the job exited with code %d", e.Code) }

// ExitCode is the job's exit code, for the service's state and restart policy.
func (e *JobExit) ExitCode() int { return e.Code }

// TrapExitCode is the exit code a trapped job reports: what `wasmtime run`
// exits with after a trap on Unix (128 + SIGABRT), so that a trap never
// reads as a clean exit 0.
const TrapExitCode = 134

// JobTrap is a job that trapped (unreachable, out of bounds, out of fuel
// or memory) instead of exiting.
type JobTrap struct{ Err error }

func (e *JobTrap) Error() string { return "the job trapped: " + e.Err.Error() }

// Unwrap is the trap itself.
func (e *JobTrap) Unwrap() error { return e.Err }

// ExitCode is TrapExitCode, for the service's state and restart policy.
func (e *JobTrap) ExitCode() int { return TrapExitCode }

// jobOutput is where a job's stdout and stderr go: the service log (its
// own stderr stream if it keeps one), noting whether the guest left a line
// unfinished, so fungi's closing line starts on a line of its own.
type jobOutput struct {
	stdout, stderr *lineWriter
}

func newJobOutput(log io.Writer) *jobOutput {
	return &jobOutput{stdout: &lineWriter{w: log}, stderr: &lineWriter{w: jobStderr(log)}}
}

// lineBreak is "\n" if the guest's output ends inside a line.
func (o *jobOutput) lineBreak() string {
	if o.stdout.midLine.Load() || o.stderr.midLine.Load() {
		return "\n"
	}
	return ""
}

// lineWriter passes writes on, noting whether the last ended a line.
type lineWriter struct {
	w       io.Writer
	midLine atomic.Bool
}

func (l *lineWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.midLine.Store(p[len(p)-1] != '\n')
	}
	return l.w.Write(p)
}

type job struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	stopped bool
	err     error
}

func (j *job) Stop(ctx context.Context) error {
	j.mu.Lock()
	j.stopped = true
	j.mu.Unlock()
	j.cancel()
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (j *job) Done() <-chan struct{} { return j.done }

func (j *job) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}
