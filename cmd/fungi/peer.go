package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/fungi-go/fungi/messages"
)

type peerCmd struct {
	Use        peerUseCmd        `cmd:"" help:"Set the default target of remote commands."`
	Current    peerCurrentCmd    `cmd:"" help:"Show the default target."`
	Clear      peerClearCmd      `cmd:"" help:"Forget the default target."`
	Capability peerCapabilityCmd `cmd:"" help:"Show the peer's runtimes and limits."`
	Admin      peerAdminCmd      `cmd:"" help:"Administer services on the peer (needs the admin role there)."`
}

// peerFlag names the target of a remote command; without it the target is
// the one `peer use` set.
type peerFlag struct {
	Peer string `name:"peer" short:"p" placeholder:"DEVICE" help:"Target device, alias or peer ID (default: fungi peer use)."`
}

type peerUseCmd struct {
	deviceArg
	jsonFlag
}

func (c *peerUseCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		dev, err := d.UsePeer(ctx, &messages.PeerUse{Device: c.Device})
		if err != nil {
			return err
		}
		return e.printDevice(dev, c.JSON, "remote commands now target")
	})
}

type peerCurrentCmd struct{ jsonFlag }

func (c *peerCurrentCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		dev, err := d.CurrentPeer(ctx, &messages.PeerCurrent{})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSON(e.stdout, dev)
		}
		fmt.Fprintln(e.stdout, deviceLabel(dev))
		return nil
	})
}

type peerClearCmd struct{}

func (c *peerClearCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		if _, err := d.ClearPeer(ctx, &messages.PeerClear{}); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "no default target peer; remote commands need --peer")
		return nil
	})
}

// remote prints the resolved target, then runs req on it and hands each
// answer to onReply.
func (e *env) remote(ctx context.Context, d *daemonClient, device string, req *messages.Envelope, onReply func(*messages.Envelope) error) error {
	_, err := e.remoteOn(ctx, d, device, req, onReply)
	return err
}

// remoteOn is remote that also returns the device the request ran on, for
// output that names where a service runs.
func (e *env) remoteOn(ctx context.Context, d *daemonClient, device string, req *messages.Envelope, onReply func(*messages.Envelope) error) (*messages.Device, error) {
	dev, err := d.ResolveDevice(ctx, &messages.DeviceResolve{Device: device})
	if err != nil {
		return nil, err
	}
	return dev, e.remoteStream(ctx, d, dev, req, onReply)
}

func (e *env) remoteStream(ctx context.Context, d *daemonClient, dev *messages.Device, req *messages.Envelope, onReply func(*messages.Envelope) error) error {
	fmt.Fprintf(e.stderr, "target peer: %s\n", deviceLabel(dev))
	stream, err := d.Remote(ctx, &messages.RemoteRequest{Device: dev.PeerId, Request: req})
	if err != nil {
		return err
	}
	for {
		env, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := onReply(env); err != nil {
			return err
		}
	}
}

// remotePull is pullWatching on a peer: it sends req (a pull, or an apply)
// to device, shows the steps as they come, hands an apply's report to
// onApply (when set) rather than showing it as a step, and returns the
// service the peer registered and the device it is on.
func (e *env) remotePull(ctx context.Context, d *daemonClient, device string, req *messages.PullServiceRequest, onApply func(*messages.ApplyResult)) (*messages.ServiceInfo, *messages.Device, error) {
	var info *messages.ServiceInfo
	progress := newProgressPrinter(e.stderr)
	dev, err := e.remoteOn(ctx, d, device, &messages.Envelope{Body: &messages.Envelope_Pull{Pull: req}}, func(env *messages.Envelope) error {
		if p := env.GetPullProgress(); p != nil {
			if p.Apply != nil && onApply != nil {
				onApply(p.Apply)
			} else {
				progress.print(p)
			}
		}
		if s := env.GetService(); s != nil {
			info = s
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if info == nil {
		what := "pull"
		if onApply != nil {
			what = "apply"
		}
		return nil, nil, fmt.Errorf("the peer ended the %s without a result", what)
	}
	return info, dev, nil
}

// remoteOne runs a request with a single answer.
func (e *env) remoteOne(device string, req *messages.Envelope, use func(*messages.Envelope) error) error {
	return e.remoteOneOn(device, req, func(_ *messages.Device, env *messages.Envelope) error { return use(env) })
}

// remoteOneOn is remoteOne that tells use which device answered.
func (e *env) remoteOneOn(device string, req *messages.Envelope, use func(*messages.Device, *messages.Envelope) error) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		var answer *messages.Envelope
		dev, err := e.remoteOn(ctx, d, device, req, func(env *messages.Envelope) error { answer = env; return nil })
		if err != nil {
			return err
		}
		if answer == nil {
			return errors.New("the peer sent no answer")
		}
		return use(dev, answer)
	})
}

// deviceName is how output names a device: its alias, else its peer ID.
func deviceName(d *messages.Device) string {
	if d.GetAlias() != "" {
		return terminalSafe(d.Alias)
	}
	return terminalSafe(d.GetPeerId())
}

// printStartedOn says a service runs on a peer: its ports are the peer's
// loopback, reached from here through an access entry.
func (e *env) printStartedOn(verb string, dev *messages.Device, info *messages.ServiceInfo, asJSON bool) error {
	if asJSON {
		return printJSON(e.stdout, info)
	}
	info = humanSafe(info)
	on := deviceName(dev)
	fmt.Fprintf(e.stdout, "%s %s on %s: %s (on %s; reach it with fungi access attach %s --peer %s)\n",
		verb, info.GetName(), on, portsText(info), on, info.GetName(), on)
	return nil
}

type peerCapabilityCmd struct {
	peerFlag
	jsonFlag
}

func (c *peerCapabilityCmd) Run(e *env) error {
	req := &messages.Envelope{Body: &messages.Envelope_RuntimesRequest{RuntimesRequest: &messages.RuntimesRequest{}}}
	return e.remoteOne(c.Peer, req, func(env *messages.Envelope) error {
		runtimes := env.GetRuntimes()
		if !c.JSON {
			runtimes = humanSafe(runtimes)
		}
		return e.printRuntimes(runtimes, c.JSON)
	})
}

type peerAdminCmd struct {
	Service peerAdminServiceCmd `cmd:"" help:"The service commands, run on the peer."`
}

type peerAdminServiceCmd struct {
	Pull    remotePullCmd    `cmd:"" help:"Pull a manifest onto the peer; a source.file is shipped with it."`
	List    remoteListCmd    `cmd:"" aliases:"ls" help:"List the peer's services."`
	Start   remoteStartCmd   `cmd:"" help:"Start a service on the peer."`
	Stop    remoteStopCmd    `cmd:"" help:"Stop a service on the peer."`
	Restart remoteRestartCmd `cmd:"" help:"Stop a service on the peer and start it again."`
	Remove  remoteRemoveCmd  `cmd:"" aliases:"rm" help:"Remove a service from the peer; its data folder is kept there."`
	Inspect remoteInspectCmd `cmd:"" help:"Inspect a service on the peer."`
	Logs    remoteLogsCmd    `cmd:"" help:"Show a service's output on the peer."`
	Expose  remoteExposeCmd  `cmd:"" help:"Publish a TCP service that already runs on the peer or its LAN."`
	Apply   remoteApplyCmd   `cmd:"" help:"Create or update a service on the peer from a manifest or a recipe, in place."`
}

type remotePullCmd struct {
	peerFlag
	File string `arg:"" type:"existingfile" help:"Service manifest (YAML)."`
	jsonFlag
}

func (c *remotePullCmd) Run(e *env) error {
	req, err := readManifestToShip(c.File)
	if err != nil {
		return err
	}
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		info, dev, err := e.remotePull(ctx, d, c.Peer, req, nil)
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSON(e.stdout, info)
		}
		info = humanSafe(info)
		on := deviceName(dev)
		fmt.Fprintf(e.stdout, "pulled %s (%s) on %s: %s (on %s)\n", info.Name, info.Runtime, on, portsText(info), on)
		fmt.Fprintf(e.stderr, "start it with: fungi peer admin service start %s --peer %s\n", info.Name, on)
		return nil
	})
}

type remoteListCmd struct {
	peerFlag
	wideFlag
	jsonFlag
}

func (c *remoteListCmd) Run(e *env) error {
	req := &messages.Envelope{Body: &messages.Envelope_List{List: &messages.ListServicesRequest{}}}
	return e.remoteOne(c.Peer, req, func(env *messages.Envelope) error {
		return e.printServiceList(env.GetServices(), c.JSON, c.Wide)
	})
}

type remoteStartCmd struct {
	peerFlag
	serviceNameArg
	Wait bool `name:"wait" help:"Stay until the run ends: stream its output and exit with its exit code (for jobs)."`
	jsonFlag
}

func (c *remoteStartCmd) Run(e *env) error {
	if c.Wait {
		return e.remoteStartWait(c.Peer, c.Name, c.JSON)
	}
	req := &messages.Envelope{Body: &messages.Envelope_Start{Start: &messages.StartService{Name: c.Name}}}
	return e.remoteOneOn(c.Peer, req, func(dev *messages.Device, env *messages.Envelope) error {
		return e.printStartedOn("started", dev, env.GetService(), c.JSON)
	})
}

type remoteStopCmd struct {
	peerFlag
	serviceNameArg
	jsonFlag
}

func (c *remoteStopCmd) Run(e *env) error {
	req := &messages.Envelope{Body: &messages.Envelope_Stop{Stop: &messages.StopService{Name: c.Name}}}
	return e.remoteOne(c.Peer, req, func(env *messages.Envelope) error {
		return e.printStopped(env.GetService(), c.JSON)
	})
}

type remoteRemoveCmd struct {
	peerFlag
	serviceNameArg
	jsonFlag
}

func (c *remoteRemoveCmd) Run(e *env) error {
	req := &messages.Envelope{Body: &messages.Envelope_Remove{Remove: &messages.RemoveService{Name: c.Name}}}
	return e.remoteOne(c.Peer, req, func(env *messages.Envelope) error {
		return e.printRemoved(c.Name, env.GetRemoved(), c.JSON)
	})
}

type remoteInspectCmd struct {
	peerFlag
	serviceNameArg
	jsonFlag
}

func (c *remoteInspectCmd) Run(e *env) error {
	req := &messages.Envelope{Body: &messages.Envelope_Inspect{Inspect: &messages.InspectService{Name: c.Name}}}
	return e.remoteOne(c.Peer, req, func(env *messages.Envelope) error {
		if c.JSON {
			return printJSON(e.stdout, env.GetService())
		}
		printInspect(e.stdout, env.GetService())
		return nil
	})
}

type remoteLogsCmd struct {
	peerFlag
	serviceNameArg
	Tail   int  `name:"tail" default:"-1" help:"Show only the last N lines (default all)."`
	Follow bool `name:"follow" short:"f" help:"Keep printing new output until interrupted."`
}

func (c *remoteLogsCmd) Run(e *env) error {
	req := &messages.Envelope{Body: &messages.Envelope_Logs{Logs: &messages.LogsRequest{Name: c.Name, Tail: int32(c.Tail), Follow: c.Follow}}}
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		// The peer's service writes whatever it likes; its escape
		// sequences must not reach this terminal.
		out := &terminalWriter{w: e.stdout}
		defer out.Close()
		return e.remote(ctx, d, c.Peer, req, func(env *messages.Envelope) error {
			if chunk := env.GetLogChunk(); chunk != nil {
				if _, err := out.Write(chunk.Data); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

type remoteRestartCmd struct {
	peerFlag
	serviceNameArg
	jsonFlag
}

func (c *remoteRestartCmd) Run(e *env) error {
	stop := &messages.Envelope{Body: &messages.Envelope_Stop{Stop: &messages.StopService{Name: c.Name}}}
	if err := e.remoteOne(c.Peer, stop, func(*messages.Envelope) error { return nil }); err != nil {
		return err
	}
	start := &messages.Envelope{Body: &messages.Envelope_Start{Start: &messages.StartService{Name: c.Name}}}
	return e.remoteOneOn(c.Peer, start, func(dev *messages.Device, env *messages.Envelope) error {
		return e.printStartedOn("restarted", dev, env.GetService(), c.JSON)
	})
}
