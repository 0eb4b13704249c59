package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fungi-go/fungi/messages"
)

// applyFlags are the flags apply takes here and on a peer.
type applyFlags struct {
	File   string   `arg:"" optional:"" type:"existingfile" help:"Service manifest (YAML), fungi's own or a Rust fungi 0.7 service file."`
	Recipe string   `name:"recipe" help:"Apply a recipe from the catalogue (see fungi service recipe list) instead of a file."`
	Set    []string `name:"set" placeholder:"KEY=VALUE" help:"With --recipe: set one of the recipe's parameters (repeatable)."`
	recipeCatalogFlag
	DryRun bool `name:"dry-run" help:"Print what would change, field by field, and change nothing."`
	Start  bool `name:"start" help:"Start the service once applied (a running service runs on anyway)."`
	jsonFlag
}

type serviceApplyCmd struct{ applyFlags }

// Run creates or updates a service on this node.
func (c *serviceApplyCmd) Run(e *env) error {
	req, err := c.request(e, false)
	if err != nil {
		return err
	}
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		var result *messages.ApplyResult
		info, err := pullWatching(ctx, d, req, e.stderr, func(r *messages.ApplyResult) { result = r })
		if err != nil {
			return err
		}
		return e.printApplied(info, result, c.JSON, "")
	})
}

type remoteApplyCmd struct {
	peerFlag
	applyFlags
}

// Run creates or updates a service on a peer, through the peer control
// path: the same permission as a pull.
func (c *remoteApplyCmd) Run(e *env) error {
	req, err := c.request(e, true)
	if err != nil {
		return err
	}
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		var result *messages.ApplyResult
		info, dev, err := e.remotePull(ctx, d, c.Peer, req, func(r *messages.ApplyResult) { result = r })
		if err != nil {
			return err
		}
		return e.printApplied(info, result, c.JSON, deviceName(dev))
	})
}

// request reads the manifest (or makes it from a recipe) for an apply;
// toPeer ships a source.file with it.
func (c *applyFlags) request(e *env, toPeer bool) (*messages.PullServiceRequest, error) {
	var req *messages.PullServiceRequest
	var err error
	switch {
	case c.Recipe != "" && c.File != "":
		return nil, errors.New("give a manifest FILE or --recipe NAME, not both")
	case c.Recipe != "":
		req, err = recipeRequest(e, c.Recipe, c.Set, c.recipeCatalogFlag)
	case len(c.Set) > 0:
		return nil, errors.New("--set sets a recipe's parameters; use it with --recipe NAME")
	case c.File == "":
		return nil, errors.New("name a manifest FILE or a --recipe (see `fungi service recipe list`)")
	case toPeer:
		req, err = readManifestToShip(c.File)
	default:
		req, err = readManifest(c.File)
	}
	if err != nil {
		return nil, err
	}
	req.Apply, req.DryRun, req.Start = true, c.DryRun, c.Start
	return req, nil
}

// pullWatching is pull that hands an apply's report to onApply (when set)
// rather than printing it as a step.
func pullWatching(ctx context.Context, d *daemonClient, req *messages.PullServiceRequest, w io.Writer, onApply func(*messages.ApplyResult)) (*messages.ServiceInfo, error) {
	stream, err := d.Pull(ctx, req)
	if err != nil {
		return nil, err
	}
	progress := newProgressPrinter(w)
	for {
		p, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			what := "pull"
			if onApply != nil {
				what = "apply"
			}
			return nil, fmt.Errorf("the daemon ended the %s without a result", what)
		}
		if err != nil {
			return nil, err
		}
		switch {
		case p.Service != nil:
			return p.Service, nil
		case p.Apply != nil && onApply != nil:
			onApply(p.Apply)
		default:
			progress.print(p)
		}
	}
}

// printApplied shows what an apply did. A rollback is an error: the
// command fails, after saying what runs now.
func (e *env) printApplied(info *messages.ServiceInfo, res *messages.ApplyResult, asJSON bool, on string) error {
	if res == nil {
		res = &messages.ApplyResult{Action: "updated"}
	}
	if asJSON {
		svc, err := marshalJSON(info)
		if err != nil {
			return err
		}
		ap, err := marshalJSON(res)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "{\n  \"service\": %s,\n  \"apply\": %s\n}\n",
			strings.ReplaceAll(string(svc), "\n", "\n  "), strings.ReplaceAll(string(ap), "\n", "\n  "))
	} else {
		e.printApplyText(humanSafe(info), humanSafe(res), on)
	}
	if res.RolledBack {
		return fmt.Errorf("apply %s: the new version did not start (%s); the previous version runs again", info.Name, res.RollbackReason)
	}
	return nil
}

func (e *env) printApplyText(info *messages.ServiceInfo, res *messages.ApplyResult, on string) {
	where := ""
	if on != "" {
		where = " on " + on
	}
	verb := res.Action
	if res.DryRun {
		verb = "would be " + res.Action
		if res.Action == "unchanged" {
			verb = "unchanged"
		}
	}
	line := fmt.Sprintf("%s %s%s", info.Name, verb, where)
	if res.Strategy != "" && !res.DryRun {
		line += fmt.Sprintf(" (%s", res.Strategy)
		if res.Strategy != "files" {
			line += fmt.Sprintf(", switched in %d ms", res.SwitchMs)
		}
		line += ")"
	}
	fmt.Fprintln(e.stdout, line)
	for _, ch := range res.Changes {
		old, nw := ch.Old, ch.New
		if old == "" {
			old = "(none)"
		}
		if nw == "" {
			nw = "(none)"
		}
		fmt.Fprintf(e.stdout, "  %s: %s -> %s\n", ch.Field, old, nw)
	}
	if res.Note != "" {
		fmt.Fprintf(e.stderr, "note: %s\n", res.Note)
	}
	if res.RolledBack {
		fmt.Fprintf(e.stdout, "rolled back: %s\n", res.RollbackReason)
	}
	if !res.DryRun {
		fmt.Fprintf(e.stdout, "%s %s: %s\n", info.Name, info.State, portsText(info))
	}
}
