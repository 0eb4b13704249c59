package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/fungi-go/fungi/messages"
)

type deviceCmd struct {
	Add     deviceAddCmd     `cmd:"" help:"Add a device to the address book."`
	List    deviceListCmd    `cmd:"" help:"List the address book with roles and connection state."`
	Remove  deviceRemoveCmd  `cmd:"" help:"Remove a device (and close its connections)."`
	Rename  deviceRenameCmd  `cmd:"" help:"Give a device another alias."`
	Trust   deviceTrustCmd   `cmd:"" help:"Let a device in: access (catalog and access, the default) or admin (also administer services)."`
	Untrust deviceUntrustCmd `cmd:"" help:"Take a device's role away and close its connections at once."`
	Mdns    deviceMdnsCmd    `cmd:"" name:"mdns" help:"Show the devices seen on the LAN."`
}

type deviceArg struct {
	Device string `arg:"" help:"Alias or peer ID."`
}

type deviceAddCmd struct {
	PeerID string   `arg:"" name:"peer-id" help:"The device's peer ID (it prints it with fungi info id)."`
	Alias  string   `name:"alias" required:"" help:"A name for the device."`
	Addr   []string `name:"addr" placeholder:"MULTIADDR" help:"An address to dial it on (repeatable), e.g. /ip4/192.168.1.20/tcp/4433."`
	jsonFlag
}

func (c *deviceAddCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		dev, err := d.AddDevice(ctx, &messages.DeviceAdd{PeerId: c.PeerID, Alias: c.Alias, Addrs: c.Addr})
		if err != nil {
			return err
		}
		return e.printDevice(dev, c.JSON, "added")
	})
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
		fmt.Fprintln(w, "ALIAS\tPEER ID\tROLE\tCONNECTED\tADDRESSES")
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
			fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", alias, dev.PeerId, role, dev.Connected, strings.Join(dev.Addrs, " "))
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
	Role string `name:"role" default:"access" enum:"access,admin" help:"access or admin."`
	jsonFlag
}

func (c *deviceTrustCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		dev, err := d.TrustDevice(ctx, &messages.DeviceTrust{Device: c.Device, Role: c.Role})
		if err != nil {
			return err
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
