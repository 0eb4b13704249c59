package main

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/fungi-go/fungi/internal/version"
	"github.com/fungi-go/fungi/messages"
)

type infoCmd struct {
	ID           infoIDCmd           `cmd:"" name:"id" help:"Print this node's peer ID."`
	Addrs        infoAddrsCmd        `cmd:"" help:"Print the addresses peers can reach this node on, one a line."`
	Version      infoVersionCmd      `cmd:"" help:"Print the version of fungi."`
	Runtimes     infoRuntimesCmd     `cmd:"" help:"Show the runtimes this node can run services with."`
	Reachability infoReachabilityCmd `cmd:"" help:"Show whether peers can reach this node directly, and its relay reservations."`
}

type infoReachabilityCmd struct{ jsonFlag }

func (c *infoReachabilityCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		info, err := d.Info(ctx, &messages.InfoRequest{})
		if err != nil {
			return err
		}
		if c.JSON {
			return printJSON(e.stdout, info)
		}
		fmt.Fprintf(e.stdout, "reachability: %s\n", info.Reachability)
		if len(info.RelayReservations) == 0 {
			fmt.Fprintln(e.stdout, "relay reservations: none")
		}
		for _, r := range info.RelayReservations {
			if r.Error != "" {
				fmt.Fprintf(e.stdout, "relay %s: no reservation: %s\n", r.RelayPeerId, r.Error)
				continue
			}
			fmt.Fprintf(e.stdout, "relay reservation: %s until %s\n", r.RelayPeerId, r.Expires)
		}
		return nil
	})
}

type jsonFlag struct {
	JSON bool `name:"json" help:"Print JSON (field names in the README)."`
}

type infoIDCmd struct{ jsonFlag }

// The peer ID comes from the key on disk, so it works without a daemon.
func (c *infoIDCmd) Run(e *env) error {
	_, id, err := e.home.Identity()
	if err != nil {
		return err
	}
	if c.JSON {
		return printJSON(e.stdout, &messages.NodeInfo{PeerId: id.String()})
	}
	fmt.Fprintln(e.stdout, id)
	return nil
}

type infoAddrsCmd struct{ jsonFlag }

func (c *infoAddrsCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		info, err := d.Info(ctx, &messages.InfoRequest{})
		if err != nil {
			return err
		}
		if c.JSON {
			return printStrings(e, info.Addrs)
		}
		for _, a := range info.Addrs {
			fmt.Fprintln(e.stdout, a)
		}
		return nil
	})
}

func printStrings(e *env, items []string) error {
	if items == nil {
		items = []string{}
	}
	b, err := jsonMarshalIndent(items)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, string(b))
	return nil
}

type infoVersionCmd struct{ jsonFlag }

func (c *infoVersionCmd) Run(e *env) error {
	if c.JSON {
		return printJSON(e.stdout, &messages.NodeInfo{Version: version.Version})
	}
	fmt.Fprintln(e.stdout, "fungi", version.Version)
	return nil
}

type infoRuntimesCmd struct{ jsonFlag }

func (c *infoRuntimesCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		res, err := d.Runtimes(ctx, &messages.RuntimesRequest{})
		if err != nil {
			return err
		}
		return e.printRuntimes(res, c.JSON)
	})
}

func (e *env) printRuntimes(res *messages.RuntimesResponse, asJSON bool) error {
	if asJSON {
		return printJSONList(e.stdout, res.GetRuntimes())
	}
	w := table(e.stdout)
	fmt.Fprintln(w, "RUNTIME\tAVAILABLE\tENGINE")
	for _, r := range res.Runtimes {
		fmt.Fprintf(w, "%s\t%v\t%s\n", r.Name, r.Available, r.Engine)
		// The detail (an endpoint, why a runtime is off, the hosts an
		// external service may reach) can run to hundreds of characters:
		// it goes under the engine, wrapped, so lines stay within 100.
		for _, line := range wrapWords(r.Detail, detailWidth) {
			fmt.Fprintf(w, "\t\t%s\n", line)
		}
		if l := r.WasmLimits; l != nil {
			fmt.Fprintf(w, "\t\tlimits: memory %d MB, request timeout %d ms, %d requests at once\n", l.MemoryLimitMb, l.RequestTimeoutMs, l.MaxConcurrency)
		}
	}
	return w.Flush()
}

// detailWidth is how wide a runtime's detail is wrapped: with the name and
// availability columns before it, lines stay within 100 columns.
const detailWidth = 72

// wrapWords breaks text into lines of at most width characters at spaces;
// a word longer than width (a path) gets a line of its own.
func wrapWords(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
