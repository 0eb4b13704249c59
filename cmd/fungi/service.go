package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

type serviceCmd struct {
	Pull    servicePullCmd    `cmd:"" help:"Validate a manifest, fetch its artifact and register the service (stopped)."`
	List    serviceListCmd    `cmd:"" aliases:"ls,ps" help:"List the services on this node."`
	Start   serviceStartCmd   `cmd:"" help:"Start a service."`
	Stop    serviceStopCmd    `cmd:"" help:"Stop a service."`
	Restart serviceRestartCmd `cmd:"" help:"Stop a service and start it again (same host ports)."`
	Remove  serviceRemoveCmd  `cmd:"" aliases:"rm" help:"Stop and remove a service; its data folder is kept."`
	Inspect serviceInspectCmd `cmd:"" help:"Show a service's state, runtime, source, ports, mounts, restarts and last error."`
	Logs    serviceLogsCmd    `cmd:"" help:"Show a service's output."`
	Expose  serviceExposeCmd  `cmd:"" help:"Publish a TCP service that already runs here or on the LAN (sshd, a NAS page): writes, pulls and starts its manifest."`
	Apply   serviceApplyCmd   `cmd:"" help:"Create or update a service from a manifest or a recipe; a running one is replaced in place and rolled back if the new version does not start."`
	Recipe  recipeCmd         `cmd:"" help:"The catalogue of ready-made services (fungi service apply --recipe NAME)."`
}

type servicePullCmd struct {
	File string `arg:"" type:"existingfile" help:"Service manifest (YAML)."`
	jsonFlag
}

func (c *servicePullCmd) Run(e *env) error {
	req, err := readManifest(c.File)
	if err != nil {
		return err
	}
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		info, err := pull(ctx, d, req, e.stderr)
		if err != nil {
			return err
		}
		return e.printPulled(info, c.JSON, "fungi service start")
	})
}

func (e *env) printPulled(info *messages.ServiceInfo, asJSON bool, startCmd string) error {
	if asJSON {
		return printJSON(e.stdout, info)
	}
	info = humanSafe(info)
	fmt.Fprintf(e.stdout, "pulled %s (%s): %s\n", info.Name, info.Runtime, portsText(info))
	fmt.Fprintf(e.stderr, "start it with: %s %s\n", startCmd, info.Name)
	return nil
}

// readManifestToShip reads a manifest for a peer: a source.file travels
// with it, checksummed, since the peer never reads a path it was sent.
func readManifestToShip(path string) (*messages.PullServiceRequest, error) {
	req, err := readManifest(path)
	if err != nil {
		return nil, err
	}
	m, err := manifest.Parse(req.ManifestYaml)
	if err != nil {
		return nil, err
	}
	if f := m.Spec.Source.File; f != "" {
		if !filepath.IsAbs(f) {
			f = filepath.Join(req.ManifestDir, f)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("source.file: %w (paths are relative to the manifest's folder)", err)
		}
		sum := sha256.Sum256(data)
		req.Artifact, req.ArtifactSha256 = data, hex.EncodeToString(sum[:])
	}
	req.ManifestDir = ""
	return req, nil
}

// readManifest reads a manifest for the local daemon. The daemon reads
// source.file itself, relative to the manifest's folder: both run as the
// same user on the same machine.
func readManifest(path string) (*messages.PullServiceRequest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(data, wasmMagic) {
		return nil, fmt.Errorf("%s is a WebAssembly binary, not a manifest: run it with `fungi run %s`, or write a manifest that names it in spec.source.file", path, path)
	}
	if manifest.IsLegacy(data) {
		// A Rust fungi 0.7 service file: sent as the manifest it maps to.
		if data, err = manifest.ConvertLegacy(data); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return &messages.PullServiceRequest{ManifestYaml: data, ManifestDir: dir}, nil
}

// pull runs a pull and shows its progress on w.
func pull(ctx context.Context, d *daemonClient, req *messages.PullServiceRequest, w io.Writer) (*messages.ServiceInfo, error) {
	return pullWatching(ctx, d, req, w, nil)
}

func bar(cur, total int64, width int) string {
	n := int(float64(width) * float64(min(cur, total)) / float64(total))
	s := strings.Repeat("=", n)
	if n < width {
		s += ">" + strings.Repeat(" ", width-n-1)
	}
	return "[" + s + "]"
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func portsText(info *messages.ServiceInfo) string {
	var parts []string
	for _, p := range info.Ports {
		parts = append(parts, fmt.Sprintf("%s %s", p.Name, p.HostAddress))
	}
	if len(parts) == 0 {
		return "no ports"
	}
	return strings.Join(parts, ", ")
}

type serviceListCmd struct {
	AllDevices bool `name:"all-devices" help:"Every device's services in one table: live where a device answers, else its last answer marked with its age."`
	Refresh    bool `name:"refresh" help:"With --all-devices: dial devices not connected now, rather than show their last answer."`
	wideFlag
	jsonFlag
}

func (c *serviceListCmd) Run(e *env) error {
	if c.AllDevices {
		return e.listAllDevices(c.Refresh, c.JSON)
	}
	if c.Refresh {
		return errors.New("--refresh goes with --all-devices: this node's own list is always live")
	}
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		res, err := d.List(ctx, &messages.ListServicesRequest{})
		if err != nil {
			return err
		}
		return e.printServiceList(res, c.JSON, c.Wide)
	})
}

func (e *env) printServiceList(res *messages.ServiceList, asJSON, wide bool) error {
	if asJSON {
		return printJSONList(e.stdout, res.GetServices())
	}
	if len(res.GetServices()) == 0 {
		fmt.Fprintln(e.stderr, "no services; pull one with: fungi service pull MANIFEST")
		return nil
	}
	w := table(e.stdout)
	fmt.Fprintln(w, "NAME\tRUNTIME\tSTATE\tPORTS\tSOURCE")
	for _, s := range humanSafe(res).Services {
		src := s.Source
		if !wide {
			src = shortSource(src)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Runtime, s.State, portsText(s), src)
	}
	return w.Flush()
}

type serviceNameArg struct {
	Name string `arg:"" help:"Service name (metadata.name of its manifest)."`
}

type serviceStartCmd struct {
	serviceNameArg
	Wait bool `name:"wait" help:"Stay until the run ends: stream its output and exit with its exit code (for jobs)."`
	jsonFlag
}

func (c *serviceStartCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		if c.Wait {
			_, err := e.startWait(ctx, d, c.Name, c.JSON)
			return err
		}
		info, err := d.Start(ctx, &messages.StartService{Name: c.Name})
		if err != nil {
			return err
		}
		return e.printStarted(info, c.JSON)
	})
}

func (e *env) printStarted(info *messages.ServiceInfo, asJSON bool) error {
	if asJSON {
		return printJSON(e.stdout, info)
	}
	info = humanSafe(info)
	fmt.Fprintf(e.stdout, "started %s: %s\n", info.GetName(), portsText(info))
	return nil
}

type serviceStopCmd struct {
	serviceNameArg
	jsonFlag
}

func (c *serviceStopCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		info, err := d.Stop(ctx, &messages.StopService{Name: c.Name})
		if err != nil {
			return err
		}
		return e.printStopped(info, c.JSON)
	})
}

func (e *env) printStopped(info *messages.ServiceInfo, asJSON bool) error {
	if asJSON {
		return printJSON(e.stdout, info)
	}
	fmt.Fprintf(e.stdout, "stopped %s\n", terminalSafe(info.GetName()))
	return nil
}

type serviceRemoveCmd struct {
	serviceNameArg
	jsonFlag
}

func (c *serviceRemoveCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		res, err := d.Remove(ctx, &messages.RemoveService{Name: c.Name})
		if err != nil {
			return err
		}
		return e.printRemoved(c.Name, res, c.JSON)
	})
}

func (e *env) printRemoved(name string, res *messages.RemoveServiceResponse, asJSON bool) error {
	if asJSON {
		return printJSON(e.stdout, res)
	}
	fmt.Fprintf(e.stdout, "removed %s\n", terminalSafe(name))
	if res.GetDataDirKept() != "" {
		fmt.Fprintf(e.stdout, "its data folder is kept: %s (delete it yourself when you no longer need it)\n", terminalSafe(res.GetDataDirKept()))
	}
	return nil
}

type serviceInspectCmd struct {
	serviceNameArg
	jsonFlag
}

func (c *serviceInspectCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		info, err := d.Inspect(ctx, &messages.InspectService{Name: c.Name})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSON(e.stdout, info)
		}
		printInspect(e.stdout, info)
		return nil
	})
}

func printInspect(out io.Writer, s *messages.ServiceInfo) {
	s = humanSafe(s)
	w := table(out)
	row := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
	row("Name", s.Name)
	row("State", s.State)
	row("Desired state", s.DesiredState)
	row("Runtime", s.Runtime)
	row("Source", s.Source)
	if a := s.ArtifactSha256; a != "" {
		if !strings.HasPrefix(a, "sha256:") {
			a = "sha256:" + a
		}
		row("Artifact", a)
	}
	if s.ContainerId != "" {
		row("Container", s.ContainerId)
	}
	if s.StartedAt != "" {
		row("Started at", s.StartedAt)
	}
	row("Restart policy", s.RestartPolicy)
	row("Restarts", fmt.Sprint(s.Restarts))
	if s.LastError != "" {
		row("Last error", s.LastError)
	}
	if s.ExitCode != 0 {
		row("Exit code", fmt.Sprint(s.ExitCode))
	}
	if s.DataDir != "" {
		row("Data folder", s.DataDir)
	}
	for _, p := range s.Ports {
		target := ""
		if p.ServicePort != 0 && s.Runtime != manifest.RuntimeExternal {
			target = fmt.Sprintf(" -> %d", p.ServicePort)
		}
		row("Port "+p.Name, fmt.Sprintf("%s%s/%s", p.HostAddress, target, p.Protocol))
	}
	for _, m := range s.Mounts {
		row("Mount", m.HostPath+" -> "+m.RuntimePath)
	}
	if x := s.Expose; x != nil && x.Enabled {
		row("Exposed as", fmt.Sprintf("%s (%q, %s %s)", x.ServiceId, x.DisplayName, x.Usage, x.Path))
	} else {
		row("Exposed as", "not exposed")
	}
	w.Flush()
}

type serviceLogsCmd struct {
	serviceNameArg
	Tail   int  `name:"tail" default:"-1" help:"Show only the last N lines (default all)."`
	Follow bool `name:"follow" short:"f" help:"Keep printing new output until interrupted."`
}

func (c *serviceLogsCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		stream, err := d.Logs(ctx, &messages.LogsRequest{Name: c.Name, Tail: int32(c.Tail), Follow: c.Follow})
		if err != nil {
			return err
		}
		// A service's output is its guest's text, and a remote admin may have
		// pulled the guest: on a terminal its control sequences are stripped,
		// as for a peer's logs; piped, the bytes stay exact.
		var out io.Writer = e.stdout
		if isTerminal(e.stdout) {
			tw := &terminalWriter{w: e.stdout}
			defer tw.Close()
			out = tw
		}
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			out.Write(chunk.Data)
		}
	})
}

// isTerminal reports whether w is a terminal rather than a pipe or file.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

type serviceRestartCmd struct {
	serviceNameArg
	jsonFlag
}

// Run stops the service and starts it again, on the same host ports: what
// an owner does after changing its data, or mounts.allowed.
func (c *serviceRestartCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		if _, err := d.Stop(ctx, &messages.StopService{Name: c.Name}); err != nil {
			return err
		}
		info, err := d.Start(ctx, &messages.StartService{Name: c.Name})
		if err != nil {
			return fmt.Errorf("stopped %s, but it did not start again: %s", c.Name, message(err))
		}
		return e.printRestarted(info, c.JSON)
	})
}

func (e *env) printRestarted(info *messages.ServiceInfo, asJSON bool) error {
	if asJSON {
		return printJSON(e.stdout, info)
	}
	info = humanSafe(info)
	fmt.Fprintf(e.stdout, "restarted %s: %s\n", info.GetName(), portsText(info))
	return nil
}
