package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fungi-go/fungi/messages"
)

type serviceCmd struct {
	Pull    servicePullCmd    `cmd:"" help:"Validate a manifest, fetch its artifact and register the service (stopped)."`
	List    serviceListCmd    `cmd:"" help:"List the services on this node."`
	Start   serviceStartCmd   `cmd:"" help:"Start a service."`
	Stop    serviceStopCmd    `cmd:"" help:"Stop a service."`
	Remove  serviceRemoveCmd  `cmd:"" help:"Stop and remove a service; its data folder is kept."`
	Inspect serviceInspectCmd `cmd:"" help:"Show a service's state, runtime, source, ports, mounts, restarts and last error."`
	Logs    serviceLogsCmd    `cmd:"" help:"Show a service's output."`
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
		if c.JSON {
			return printJSON(e.stdout, info)
		}
		fmt.Fprintf(e.stdout, "pulled %s (%s): %s\n", info.Name, info.Runtime, portsText(info))
		fmt.Fprintf(e.stderr, "start it with: fungi service start %s\n", info.Name)
		return nil
	})
}

// readManifest reads a manifest for the local daemon. The daemon reads
// source.file itself, relative to the manifest's folder: both run as the
// same user on the same machine.
func readManifest(path string) (*messages.PullServiceRequest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return &messages.PullServiceRequest{ManifestYaml: data, ManifestDir: dir}, nil
}

// pull runs a pull and shows its progress on w.
func pull(ctx context.Context, d *daemonClient, req *messages.PullServiceRequest, w io.Writer) (*messages.ServiceInfo, error) {
	stream, err := d.Pull(ctx, req)
	if err != nil {
		return nil, err
	}
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the daemon ended the pull without a result")
		}
		if err != nil {
			return nil, err
		}
		if p.Service != nil {
			return p.Service, nil
		}
		if p.Total > 0 {
			fmt.Fprintf(w, "%s: %d/%d bytes\n", p.Message, p.Current, p.Total)
		} else if p.Current > 0 {
			fmt.Fprintf(w, "%s: %d bytes\n", p.Message, p.Current)
		} else {
			fmt.Fprintln(w, p.Message)
		}
	}
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

type serviceListCmd struct{ jsonFlag }

func (c *serviceListCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		res, err := d.List(ctx, &messages.ListServicesRequest{})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSONList(e.stdout, res.Services)
		}
		if len(res.Services) == 0 {
			fmt.Fprintln(e.stderr, "no services; pull one with: fungi service pull MANIFEST")
			return nil
		}
		w := table(e.stdout)
		fmt.Fprintln(w, "NAME\tRUNTIME\tSTATE\tPORTS\tSOURCE")
		for _, s := range res.Services {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Runtime, s.State, portsText(s), s.Source)
		}
		return w.Flush()
	})
}

type serviceNameArg struct {
	Name string `arg:"" help:"Service name (metadata.name of its manifest)."`
}

type serviceStartCmd struct {
	serviceNameArg
	jsonFlag
}

func (c *serviceStartCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		info, err := d.Start(ctx, &messages.StartService{Name: c.Name})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSON(e.stdout, info)
		}
		fmt.Fprintf(e.stdout, "started %s: %s\n", info.Name, portsText(info))
		return nil
	})
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
		if c.JSON {
			return printJSON(e.stdout, info)
		}
		fmt.Fprintf(e.stdout, "stopped %s\n", info.Name)
		return nil
	})
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
		if c.JSON {
			return printJSON(e.stdout, res)
		}
		fmt.Fprintf(e.stdout, "removed %s\n", c.Name)
		fmt.Fprintf(e.stdout, "its data folder is kept: %s (delete it yourself when you no longer need it)\n", res.DataDirKept)
		return nil
	})
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
	w := table(out)
	row := func(k, v string) { fmt.Fprintf(w, "%s:\t%s\n", k, v) }
	row("Name", s.Name)
	row("State", s.State)
	row("Desired state", s.DesiredState)
	row("Runtime", s.Runtime)
	row("Source", s.Source)
	if s.ArtifactSha256 != "" {
		row("Artifact", "sha256:"+s.ArtifactSha256)
	}
	if s.StartedAt != "" {
		row("Started at", s.StartedAt)
	}
	row("Restart policy", s.RestartPolicy)
	row("Restarts", fmt.Sprint(s.Restarts))
	if s.LastError != "" {
		row("Last error", s.LastError)
	}
	row("Data folder", s.DataDir)
	for _, p := range s.Ports {
		target := ""
		if p.ServicePort != 0 {
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
	Follow bool `name:"follow" help:"Keep printing new output until interrupted (-f works too after logs)."`
}

func (c *serviceLogsCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		stream, err := d.Logs(ctx, &messages.LogsRequest{Name: c.Name, Tail: int32(c.Tail), Follow: c.Follow})
		if err != nil {
			return err
		}
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			e.stdout.Write(chunk.Data)
		}
	})
}
