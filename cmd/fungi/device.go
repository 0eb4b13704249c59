package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/fungi-go/fungi/messages"
)

type deviceCmd struct {
	Add     deviceAddCmd     `cmd:"" help:"Add a device to the address book."`
	List    deviceListCmd    `cmd:"" aliases:"ls" help:"List the address book with roles and connection state."`
	Remove  deviceRemoveCmd  `cmd:"" aliases:"rm" help:"Remove a device (and close its connections)."`
	Rename  deviceRenameCmd  `cmd:"" help:"Give a device another alias."`
	Trust   deviceTrustCmd   `cmd:"" help:"Let a device in: access (catalog and access, the default) or admin (also administer services)."`
	Untrust deviceUntrustCmd `cmd:"" help:"Take a device's role away and close its connections at once."`
	Mdns    deviceMdnsCmd    `cmd:"" name:"mdns" help:"Show the devices seen on the LAN."`
	Invite  deviceInviteCmd  `cmd:"" help:"Print a single-use code another device joins this one with."`
	Join    deviceJoinCmd    `cmd:"" help:"Join another device with the code its device invite printed."`
	Pending devicePendingCmd `cmd:"" help:"List devices the gate refused; let one in with device trust PEER_ID."`
}

type deviceArg struct {
	Device string `arg:"" help:"Alias or peer ID."`
}

type deviceAddCmd struct {
	PeerID string   `arg:"" name:"peer-id" help:"The device's peer ID (it prints it with fungi info id), or one of its full addresses ending /p2p/PEER_ID (fungi info lists them), which is kept as an address to dial."`
	Alias  string   `name:"alias" required:"" help:"A name for the device."`
	Addr   []string `name:"addr" placeholder:"MULTIADDR" help:"An address to dial it on (repeatable), e.g. /ip4/192.168.1.20/tcp/4433."`
	jsonFlag
}

func (c *deviceAddCmd) Run(e *env) error {
	id, addrs, err := deviceAddTarget(c.PeerID, c.Addr)
	if err != nil {
		return err
	}
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		dev, err := d.AddDevice(ctx, &messages.DeviceAdd{PeerId: id, Alias: c.Alias, Addrs: addrs})
		if err != nil {
			return err
		}
		return e.printDevice(dev, c.JSON, "added")
	})
}

// deviceAddTarget reads device add's argument: a peer ID, or a multiaddr
// ending /p2p/PEER_ID, which names the device and, ahead of addrs, is
// kept as an address to dial it on.
func deviceAddTarget(arg string, addrs []string) (string, []string, error) {
	if !strings.HasPrefix(arg, "/") {
		return arg, addrs, nil
	}
	m, err := ma.NewMultiaddr(arg)
	if err != nil {
		return "", nil, fmt.Errorf("%q is neither a peer ID nor a multiaddr (%v); give the device's peer ID (fungi info id prints it) or one of its full addresses, e.g. /ip4/192.168.1.20/tcp/4433/p2p/12D3KooW…", terminalSafe(arg), err)
	}
	transport, id := peer.SplitAddr(m)
	if id == "" {
		return "", nil, fmt.Errorf("the address %s does not end in /p2p/PEER_ID, so it names no device; append the device's peer ID (fungi info id prints it), or give the ID and --addr %s", terminalSafe(arg), terminalSafe(arg))
	}
	if transport == nil {
		return id.String(), addrs, nil // /p2p/ID alone names the device, nowhere to dial
	}
	return id.String(), append([]string{m.String()}, addrs...), nil
}

func (e *env) printDevice(dev *messages.Device, asJSON bool, verb string) error {
	if asJSON {
		return printJSON(e.stdout, dev)
	}
	fmt.Fprintf(e.stdout, "%s %s\n", verb, deviceLabel(dev))
	return nil
}

// deviceLabel is how human output names a device: alias and peer ID.
func deviceLabel(d *messages.Device) string {
	if d.Alias != "" {
		return terminalSafe(fmt.Sprintf("%s (%s)", d.Alias, d.PeerId))
	}
	return terminalSafe(d.PeerId)
}

type deviceListCmd struct{ jsonFlag }

func (c *deviceListCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		res, err := d.ListDevices(ctx, &messages.DeviceListRequest{})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSONList(e.stdout, res.Devices)
		}
		if len(res.Devices) == 0 {
			fmt.Fprintln(e.stderr, "the address book is empty; add a device with: fungi device add PEER_ID --alias NAME")
			return nil
		}
		w := table(e.stdout)
		fmt.Fprintln(w, "ALIAS\tPEER ID\tROLE\tCONNECTED\tADDRESSES\tLAST REACHED")
		for _, dev := range res.Devices {
			dev = humanSafe(dev)
			role := dev.Role
			if role == "" {
				role = "-"
			}
			alias := dev.Alias
			if dev.Current {
				alias += " *"
			}
			last := "-"
			if dev.LastAddr != "" {
				last = dev.LastAddr + " at " + dev.LastConnected
			}
			addrs := strings.Join(dev.Addrs, " ")
			if addrs == "" {
				addrs = "-"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\t%s\n", alias, dev.PeerId, role, dev.Connected, addrs, last)
		}
		return w.Flush()
	})
}

type deviceRemoveCmd struct {
	deviceArg
	jsonFlag
}

func (c *deviceRemoveCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		dev, err := d.RemoveDevice(ctx, &messages.DeviceRemove{Device: c.Device})
		if err != nil {
			return err
		}
		return e.printDevice(dev, c.JSON, "removed")
	})
}

type deviceRenameCmd struct {
	deviceArg
	Alias string `arg:"" help:"The new alias."`
	jsonFlag
}

func (c *deviceRenameCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		dev, err := d.RenameDevice(ctx, &messages.DeviceRename{Device: c.Device, Alias: c.Alias})
		if err != nil {
			return err
		}
		return e.printDevice(dev, c.JSON, "renamed to")
	})
}

type deviceTrustCmd struct {
	deviceArg
	Role  string `name:"role" default:"access" enum:"access,admin" help:"access or admin."`
	Alias string `name:"alias" placeholder:"NAME" help:"Name the device too (as device rename), e.g. when trusting a pending peer ID."`
	jsonFlag
}

func (c *deviceTrustCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		dev, err := d.TrustDevice(ctx, &messages.DeviceTrust{Device: c.Device, Role: c.Role})
		if err != nil {
			return err
		}
		if c.Alias != "" && c.Alias != dev.Alias {
			// Trusted first: a pending peer is in the address book only then.
			if dev, err = d.RenameDevice(ctx, &messages.DeviceRename{Device: dev.PeerId, Alias: c.Alias}); err != nil {
				return fmt.Errorf("trusted, but the alias was not set: %s", message(err))
			}
		}
		return e.printDevice(dev, c.JSON, "trusted ("+dev.Role+")")
	})
}

type deviceUntrustCmd struct {
	deviceArg
	jsonFlag
}

func (c *deviceUntrustCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		dev, err := d.UntrustDevice(ctx, &messages.DeviceUntrust{Device: c.Device})
		if err != nil {
			return err
		}
		return e.printDevice(dev, c.JSON, "untrusted, connections closed:")
	})
}

type deviceMdnsCmd struct{ jsonFlag }

func (c *deviceMdnsCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		res, err := d.Mdns(ctx, &messages.MdnsRequest{})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSONList(e.stdout, res.Peers)
		}
		w := table(e.stdout)
		fmt.Fprintln(w, "PEER ID\tALIAS\tLAST SEEN\tADDRESSES")
		for _, p := range res.Peers {
			p = humanSafe(p)
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.PeerId, p.Alias, p.LastSeen, strings.Join(p.Addrs, " "))
		}
		return w.Flush()
	})
}

type deviceInviteCmd struct {
	Role    string        `name:"role" default:"access" enum:"access,admin" help:"What the joining device may do here: access or admin."`
	Expires time.Duration `name:"expires" default:"10m" help:"How long the code can be used (at most 24h)."`
	Alias   string        `name:"alias" help:"A name here for the device that joins."`
	jsonFlag
}

func (c *deviceInviteCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		inv, err := d.InviteDevice(ctx, &messages.InviteRequest{Role: c.Role, ExpiresSeconds: int64(c.Expires / time.Second), Alias: c.Alias})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSON(e.stdout, inv)
		}
		fmt.Fprintln(e.stdout, inv.Code)
		fmt.Fprintf(e.stderr, "on the other device run: fungi device join CODE --alias NAME (one use, role %s, until %s; %d addresses in the code)\n",
			inv.Role, inv.Expires, len(inv.Addrs))
		return nil
	})
}

type deviceJoinCmd struct {
	Code  string `arg:"" help:"The code fungi device invite printed on the other device."`
	Alias string `name:"alias" required:"" help:"A name here for the device that invited."`
	jsonFlag
}

func (c *deviceJoinCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		dev, err := d.JoinDevice(ctx, &messages.JoinRequest{Code: c.Code, Alias: c.Alias})
		if err != nil {
			return err
		}
		return e.printDevice(dev, c.JSON, "joined")
	})
}

type devicePendingCmd struct{ jsonFlag }

func (c *devicePendingCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		res, err := d.ListPending(ctx, &messages.PendingRequest{})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSONList(e.stdout, res.Devices)
		}
		if len(res.Devices) == 0 {
			fmt.Fprintln(e.stderr, "no device was refused since the daemon started")
			return nil
		}
		w := table(e.stdout)
		fmt.Fprintln(w, "PEER ID\tADDRESS\tATTEMPTS\tFIRST SEEN\tLAST SEEN")
		for _, p := range res.Devices {
			p = humanSafe(p)
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", p.PeerId, p.Addr, p.Attempts, p.FirstSeen, p.LastSeen)
		}
		fmt.Fprintln(e.stderr, "let one in with: fungi device trust PEER_ID [--role access|admin]")
		return w.Flush()
	})
}
