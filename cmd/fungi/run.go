package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// runCmd is `fungi run`: one line from a binary or an image to a running
// service, as `docker run` and `wasmtime run|serve` are.
type runCmd struct {
	Target string   `arg:"" name:"file.wasm|image" help:"A WebAssembly file (module or component) or a container image."`
	Args   []string `arg:"" optional:"" name:"args" help:"Arguments for the guest (container: its command after the entrypoint; wasm: its argv); put -- before ones that start with -."`
	Name   string   `name:"name" help:"Service name ([a-z0-9-]; default: from the file or image name)."`
	Port   string   `name:"port" placeholder:"P" help:"Serve on a port: wasm: the host port (or auto); container: the container's port, or HOST:CONTAINER. A job has none."`
	Env    []string `name:"env" short:"e" placeholder:"K=V" help:"Environment variable for the guest (repeatable)."`
	Mount  []string `name:"mount" placeholder:"HOST:RUNTIME" help:"Mount a host folder (inside the service's data folder or a path mounts.allowed permits; repeatable)."`
	Expose bool     `name:"expose" help:"Publish it to trusted devices (catalog and access)."`
	Rm     bool     `name:"rm" help:"Remove the job once it has ended (its data folder is kept)."`
	jsonFlag
}

// Run writes the manifest, pulls it and starts the service: a server
// prints its URL, a job runs in the foreground and its exit code is the
// command's.
func (c *runCmd) Run(e *env) error {
	spec, err := c.manifest()
	if err != nil {
		return err
	}
	job := len(spec.Spec.Ports) == 0
	if c.Rm && !job {
		return fmt.Errorf("--rm is for jobs (a service with no port), and %s serves on a port; remove it with `fungi service remove %s` when done", spec.Metadata.Name, spec.Metadata.Name)
	}
	raw, err := yaml.Marshal(spec)
	if err != nil {
		return err
	}
	req := &messages.PullServiceRequest{ManifestYaml: raw}
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		info, err := pull(ctx, d, req, e.stderr)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "manifest: %s\n", filepath.Join(e.home.ServiceDir(info.Name), "manifest.yaml"))
		if job {
			return c.runJob(ctx, e, d, info.Name)
		}
		if info, err = d.Start(ctx, &messages.StartService{Name: info.Name}); err != nil {
			return err
		}
		if c.JSON {
			return printJSON(e.stdout, info)
		}
		info = humanSafe(info)
		for _, p := range info.Ports {
			fmt.Fprintf(e.stdout, "%s is running: http://%s/\n", info.Name, p.HostAddress)
		}
		fmt.Fprintf(e.stderr, "stop it with: fungi service stop %s\n", info.Name)
		return nil
	})
}

// runJob runs the job in the foreground, then removes it with --rm. An
// interrupt (Ctrl-C) stops the job, as it would a program run in the
// foreground: what the job wrote until it stopped is still shown, and the
// exit code is 130. A second interrupt stops waiting for that output.
func (c *runCmd) runJob(ctx context.Context, e *env, d *daemonClient, name string) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	streamCtx, cancelStream := context.WithCancel(ctx)
	defer cancelStream()
	type run struct {
		ended *messages.ServiceInfo
		err   error
	}
	done := make(chan run, 1)
	go func() {
		ended, err := e.streamRun(streamCtx, d, name)
		done <- run{ended, err}
	}()
	select {
	case r := <-done:
		err := r.err
		if err == nil {
			err = e.jobEnded(r.ended, c.JSON)
		}
		if c.Rm && r.ended != nil {
			if _, rmErr := d.Remove(ctx, &messages.RemoveService{Name: name}); rmErr != nil {
				fmt.Fprintf(e.stderr, "fungi: the job ended but was not removed: %s\n", message(rmErr))
			}
		}
		return err
	case <-sigs:
		return c.interrupted(ctx, e, d, name, func() {
			// The run's last lines follow the stop; bounded, and a second
			// interrupt gives up on them.
			select {
			case <-done:
			case <-sigs:
			case <-time.After(jobOutputAfterStop):
			}
			cancelStream()
		})
	}
}

// jobOutputAfterStop bounds waiting, once an interrupted job stopped, for
// the rest of its output.
const jobOutputAfterStop = 5 * time.Second

// jobStopTimeout bounds stopping an interrupted job; the node itself
// gives a stop 10 s before it ends the instance.
const jobStopTimeout = 30 * time.Second

// interrupted stops the job the user interrupted, and removes it with --rm.
// drained is called once the job stopped, to show the rest of its output.
func (c *runCmd) interrupted(ctx context.Context, e *env, d *daemonClient, name string, drained func()) error {
	ctx, cancel := context.WithTimeout(ctx, jobStopTimeout)
	defer cancel()
	if _, err := d.Stop(ctx, &messages.StopService{Name: name}); err != nil {
		return fmt.Errorf("interrupted, but %s was not stopped: %s; stop it with `fungi service stop %s`", name, message(err), name)
	}
	drained()
	what := "stopped"
	if c.Rm {
		if _, err := d.Remove(ctx, &messages.RemoveService{Name: name}); err != nil {
			return fmt.Errorf("interrupted and stopped %s, but it was not removed: %s", name, message(err))
		}
		what = "stopped and removed"
	}
	return &jobExitError{code: 130, msg: fmt.Sprintf("interrupted: %s %s", what, name)}
}

// startWait starts a service on this node, streams its run's output and
// returns how it ended; the error carries the job's exit code.
func (e *env) startWait(ctx context.Context, d *daemonClient, name string, asJSON bool) (*messages.ServiceInfo, error) {
	ended, err := e.streamRun(ctx, d, name)
	if err != nil {
		return nil, err
	}
	return ended, e.jobEnded(ended, asJSON)
}

// streamRun starts a service on this node and streams its run's output
// until the run ends, and returns how it ended.
func (e *env) streamRun(ctx context.Context, d *daemonClient, name string) (*messages.ServiceInfo, error) {
	stream, err := d.StartWait(ctx, &messages.StartService{Name: name, Wait: true})
	if err != nil {
		return nil, err
	}
	out := e.jobOutput(false)
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			out.Close()
			return nil, errors.New("the daemon ended the run's output without saying how it ended; `fungi service inspect " + name + "` shows its state")
		}
		if err != nil {
			out.Close()
			return nil, err
		}
		if chunk.Ended != nil {
			out.Close()
			return chunk.Ended, nil
		}
		out.Write(chunk.Data)
	}
}

// remoteStartWait is startWait on a peer.
func (e *env) remoteStartWait(device, name string, asJSON bool) error {
	req := &messages.Envelope{Body: &messages.Envelope_Start{Start: &messages.StartService{Name: name, Wait: true}}}
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		out := e.jobOutput(true)
		var ended *messages.ServiceInfo
		err := e.remote(ctx, d, device, req, func(env *messages.Envelope) error {
			chunk := env.GetLogChunk()
			switch {
			case chunk == nil:
				return errors.New("the peer answered start --wait with something else; are both nodes the same version of fungi?")
			case chunk.Ended != nil:
				ended = chunk.Ended
			default:
				out.Write(chunk.Data)
			}
			return nil
		})
		out.Close()
		if err != nil {
			return err
		}
		if ended == nil {
			return errors.New("the peer ended the run's output without saying how it ended; `fungi peer admin service inspect " + name + "` shows its state")
		}
		return e.jobEnded(ended, asJSON)
	})
}

// jobOutput splits a run's log: the guest's own lines go to stdout, the
// node's lines about it ("fungi: …") to stderr. A peer's text, or any on
// a terminal, has its control sequences stripped.
func (e *env) jobOutput(fromPeer bool) *jobLines {
	stdout, stderr := io.Writer(e.stdout), io.Writer(e.stderr)
	var closers []io.Closer
	if fromPeer || isTerminal(e.stdout) {
		tw := &terminalWriter{w: e.stdout}
		stdout, closers = tw, append(closers, tw)
	}
	if fromPeer || isTerminal(e.stderr) {
		tw := &terminalWriter{w: e.stderr}
		stderr, closers = tw, append(closers, tw)
	}
	return &jobLines{stdout: stdout, stderr: stderr, closers: closers}
}

// nodeLine is a line the node writes in a service's log, with or without
// its timestamp.
var nodeLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT[0-9:.]+Z )?fungi: `)

// jobLines sends whole lines on, each to its writer.
type jobLines struct {
	stdout, stderr io.Writer
	partial        []byte
	closers        []io.Closer
}

func (j *jobLines) Write(b []byte) (int, error) {
	j.partial = append(j.partial, b...)
	for {
		i := bytes.IndexByte(j.partial, '\n')
		if i < 0 {
			break
		}
		j.line(j.partial[:i+1])
		j.partial = j.partial[i+1:]
	}
	// A line longer than this without its end is passed on as it is.
	if len(j.partial) > 64<<10 {
		j.line(j.partial)
		j.partial = nil
	}
	return len(b), nil
}

func (j *jobLines) line(l []byte) {
	if nodeLine.Match(l) {
		j.stderr.Write(l)
		return
	}
	j.stdout.Write(l)
}

// Close passes on what is left of a last line without its end.
func (j *jobLines) Close() error {
	if len(j.partial) > 0 {
		j.line(j.partial)
		j.partial = nil
	}
	for _, c := range j.closers {
		c.Close()
	}
	return nil
}

// jobExitError ends the command with a job's exit code; its text, if any,
// is printed first.
type jobExitError struct {
	code int
	msg  string
}

func (e *jobExitError) Error() string { return e.msg }

// jobEnded says how the run ended and makes its exit code the command's.
func (e *env) jobEnded(info *messages.ServiceInfo, asJSON bool) error {
	if asJSON {
		if err := printJSON(e.stdout, info); err != nil {
			return err
		}
	}
	info = humanSafe(info)
	switch {
	case info.State == "failed" && info.ExitCode != 0:
		return &jobExitError{code: int(info.ExitCode), msg: fmt.Sprintf("%s exited with code %d", info.Name, info.ExitCode)}
	case info.State == "failed":
		return &jobExitError{code: 1, msg: fmt.Sprintf("%s failed: %s", info.Name, info.LastError)}
	case info.State == "running" || info.State == "starting":
		return fmt.Errorf("%s is running again (restart policy %s); `fungi service logs %s -f` follows it", info.Name, info.RestartPolicy, info.Name)
	}
	if !asJSON {
		fmt.Fprintf(e.stderr, "%s ended: %s, exit code %d\n", info.Name, info.State, info.ExitCode)
	}
	return nil
}

// manifest is the service `fungi run` describes.
func (c *runCmd) manifest() (*manifest.Document, error) {
	m := &manifest.Document{APIVersion: manifest.APIVersion, Kind: manifest.Kind}
	wasm, err := isWasmFile(c.Target)
	if err != nil {
		return nil, err
	}
	var base string
	if wasm {
		abs, err := filepath.Abs(c.Target)
		if err != nil {
			return nil, err
		}
		m.Spec.Runtime = manifest.RuntimeWasmtime
		m.Spec.Source.File = abs
		base = strings.TrimSuffix(filepath.Base(abs), filepath.Ext(abs))
	} else {
		if strings.ContainsAny(c.Target, " \t\n") || strings.HasPrefix(c.Target, "-") {
			return nil, fmt.Errorf("%q is neither a .wasm file nor a container image name", c.Target)
		}
		m.Spec.Runtime = manifest.RuntimeDocker
		m.Spec.Source.Image = c.Target
		base = imageName(c.Target)
	}
	m.Metadata.Name = c.Name
	if m.Metadata.Name == "" {
		m.Metadata.Name = serviceNameFrom(base)
	}
	port, err := c.port(wasm)
	if err != nil {
		return nil, err
	}
	if port != nil {
		m.Spec.Ports = []manifest.DocumentPort{*port}
		m.Spec.Restart = manifest.RestartOnFailure
		if c.Expose {
			x := &m.Spec.Expose
			x.Enabled, x.Transport.Kind, x.Usage.Kind, x.Usage.Path = true, "tcp", "web", "/"
		}
	} else {
		if c.Expose {
			return nil, errors.New("--expose needs a port: a job serves nothing to publish")
		}
		m.Spec.Restart = manifest.RestartNever
	}
	if len(c.Env) > 0 {
		m.Spec.Env = map[string]string{}
		for _, kv := range c.Env {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--env %q: write it as KEY=VALUE", kv)
			}
			m.Spec.Env[k] = v
		}
	}
	m.Spec.Command = c.Args
	for _, hr := range c.Mount {
		h, r, ok := strings.Cut(hr, ":")
		if !ok || h == "" || r == "" {
			return nil, fmt.Errorf("--mount %q: write it as HOST_PATH:RUNTIME_PATH", hr)
		}
		if !strings.HasPrefix(h, "${APP_HOME}") {
			if h, err = filepath.Abs(h); err != nil {
				return nil, err
			}
		}
		m.Spec.Mounts = append(m.Spec.Mounts, manifest.DocumentMount{HostPath: h, RuntimePath: r})
	}
	return m, nil
}

// port is the one port --port names, or, for a wasi:http component, an
// automatic one; nil for a job.
func (c *runCmd) port(wasm bool) (*manifest.DocumentPort, error) {
	p := &manifest.DocumentPort{Name: "http", HostPort: manifest.HostPort{Auto: true}, Protocol: "tcp"}
	if c.Port == "" {
		if wasm && servesHTTP(c.Target) {
			return p, nil
		}
		return nil, nil
	}
	host, inner, pair := strings.Cut(c.Port, ":")
	if !pair {
		host, inner = "", c.Port
	}
	if wasm {
		if pair {
			return nil, fmt.Errorf("--port %s: a wasm service listens on the host port itself; give one port (or auto)", c.Port)
		}
		host = inner
		if host != "auto" {
			n, err := parsePort(host)
			if err != nil {
				return nil, err
			}
			p.HostPort = manifest.HostPort{Port: n}
		}
		return p, nil
	}
	n, err := parsePort(inner)
	if err != nil {
		return nil, err
	}
	p.ServicePort = n
	if host != "" {
		hp, err := parsePort(host)
		if err != nil {
			return nil, err
		}
		p.HostPort = manifest.HostPort{Port: hp}
	}
	return p, nil
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("--port: %q is not a port from 1 to 65535", s)
	}
	return n, nil
}

// isWasmFile says target names a WebAssembly file: one that starts with
// the wasm magic, or a path ending in .wasm (which must exist).
func isWasmFile(target string) (bool, error) {
	head, err := readHead(target, 4)
	if err == nil {
		if bytes.Equal(head, wasmMagic) {
			return true, nil
		}
		if strings.HasSuffix(target, ".wasm") {
			return false, fmt.Errorf("%s is not a WebAssembly binary (it does not start with \\0asm)", target)
		}
		return false, nil
	}
	if strings.HasSuffix(target, ".wasm") {
		return false, fmt.Errorf("%s: %w", target, err)
	}
	return false, nil
}

var wasmMagic = []byte{0, 'a', 's', 'm'}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s is a folder", path)
	}
	buf := make([]byte, n)
	k, _ := io.ReadFull(f, buf)
	return buf[:k], nil
}

// maxSniffBytes bounds how much of a binary servesHTTP reads.
const maxSniffBytes = 256 << 20

// servesHTTP says the file is a component that exports
// wasi:http/incoming-handler: a server, as `wasmtime serve` runs it.
func servesHTTP(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSniffBytes))
	if err != nil || len(data) < 8 || data[4] == 1 { // version 1: a core module
		return false
	}
	return bytes.Contains(data, []byte("wasi:http/incoming-handler"))
}

// imageName is the last path part of an image reference, without tag or
// digest.
func imageName(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		ref = ref[i+1:]
	}
	ref, _, _ = strings.Cut(ref, ":")
	return ref
}

// serviceNameFrom makes a service name ([a-z0-9-], at most 63) of s.
func serviceNameFrom(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-")
	for strings.Contains(name, "--") {
		name = strings.ReplaceAll(name, "--", "-")
	}
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if name == "" {
		name = "app"
	}
	return name
}
