package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/fungi-go/fungi/messages"
)

type accessCmd struct {
	Attach accessAttachCmd `cmd:"" help:"Forward a local port to a service a peer publishes."`
	List   accessListCmd   `cmd:"" aliases:"ls" help:"List access entries and their local addresses."`
	Detach accessDetachCmd `cmd:"" help:"Remove an access entry."`
	Open   accessOpenCmd   `cmd:"" help:"Attach if needed and open the service's web page (printed where there is no browser)."`
}

type serviceIDArg struct {
	ServiceID string `arg:"" name:"service-id" help:"The service ID the peer publishes (see fungi catalog list)."`
}

type accessAttachCmd struct {
	serviceIDArg
	peerFlag
	LocalPort uint32 `name:"local-port" placeholder:"N" help:"Local port to use (default: one chosen once and kept)."`
	Port      string `name:"port" placeholder:"NAME" help:"Attach only this port of a multi-port service (see fungi catalog inspect)."`
	jsonFlag
}

func (c *accessAttachCmd) attach(ctx context.Context, e *env, d *daemonClient) (*messages.AccessEntry, error) {
	dev, err := d.ResolveDevice(ctx, &messages.DeviceResolve{Device: c.Peer})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(e.stderr, "target peer: %s\n", deviceLabel(dev))
	return d.Attach(ctx, &messages.AccessAttach{Device: dev.PeerId, ServiceId: c.ServiceID, LocalPort: c.LocalPort, Port: c.Port})
}

func (c *accessAttachCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		entry, err := c.attach(ctx, e, d)
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSON(e.stdout, entry)
		}
		entry = humanSafe(entry)
		for _, p := range entry.Ports {
			fmt.Fprintf(e.stdout, "%s %s\n", p.Name, p.LocalAddress)
		}
		if entry.Url != "" {
			fmt.Fprintf(e.stderr, "by name: %s\n", entry.Url)
		}
		return nil
	})
}

type accessListCmd struct {
	peerFlag
	jsonFlag
}

func (c *accessListCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		res, err := d.ListAccess(ctx, &messages.AccessListRequest{Device: c.Peer})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSONList(e.stdout, res.Entries)
		}
		if len(res.Entries) == 0 {
			fmt.Fprintln(e.stderr, "no access entries; create one with: fungi access attach SERVICE_ID --peer DEVICE")
			return nil
		}
		w := table(e.stdout)
		fmt.Fprintln(w, "SERVICE ID\tPEER\tPORT\tLOCAL ADDRESS\tNAME")
		for _, en := range res.Entries {
			en = humanSafe(en)
			who := en.Alias
			if who == "" {
				who = en.PeerId
			}
			for _, p := range en.Ports {
				name := en.Url
				if name == "" {
					name = en.Name
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", en.ServiceId, who, p.Name, p.LocalAddress, name)
			}
		}
		return w.Flush()
	})
}

type accessDetachCmd struct {
	serviceIDArg
	peerFlag
	KeepPort bool `name:"keep-port" help:"Keep the local port(s) reserved for the next attach of this service."`
	jsonFlag
}

func (c *accessDetachCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		entry, err := d.Detach(ctx, &messages.AccessDetach{Device: c.Peer, ServiceId: c.ServiceID, KeepPort: c.KeepPort})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSON(e.stdout, entry)
		}
		if c.KeepPort {
			var addrs []string
			for _, p := range humanSafe(entry).Ports {
				addrs = append(addrs, p.LocalAddress)
			}
			fmt.Fprintf(e.stdout, "detached %s; its local port is closed and kept for the next attach: %s\n", terminalSafe(entry.ServiceId), strings.Join(addrs, ", "))
			return nil
		}
		fmt.Fprintf(e.stdout, "detached %s; its local port is closed\n", terminalSafe(entry.ServiceId))
		return nil
	})
}

type accessOpenCmd struct {
	serviceIDArg
	peerFlag
}

func (c *accessOpenCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		attach := &accessAttachCmd{serviceIDArg: c.serviceIDArg, peerFlag: c.peerFlag}
		entry, err := attach.attach(ctx, e, d)
		if err != nil {
			return err
		}
		if len(entry.Ports) == 0 {
			return fmt.Errorf("the peer publishes %s without a port to open; see `fungi catalog inspect %s`", terminalSafe(entry.ServiceId), c.ServiceID)
		}
		entry = humanSafe(entry)
		local := entry.Ports[0].LocalAddress
		switch entry.Usage {
		case "web", "":
		case "ssh":
			// A browser cannot open ssh; the line to type is what helps.
			host, port, _ := net.SplitHostPort(local)
			fmt.Fprintf(e.stdout, "ssh -p %s USER@%s\n", port, host)
			fmt.Fprintf(e.stderr, "%s is an ssh service: connect with the line above (scp takes -P %s)\n", entry.ServiceId, port)
			return nil
		default:
			fmt.Fprintln(e.stdout, local)
			fmt.Fprintf(e.stderr, "%s is a %s service, not a web page; connect to %s\n", entry.ServiceId, entry.Usage, local)
			return nil
		}
		path := entry.Path
		if path == "" {
			path = "/"
		}
		url := "http://" + local + path
		fmt.Fprintln(e.stdout, url)
		openBrowser(url)
		return nil
	})
}

// openBrowser opens url where a desktop is there to show it.
func openBrowser(url string) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", url)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	default:
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return
		}
		cmd = exec.Command("xdg-open", url)
	}
	cmd.Start()
}
