package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/fungi-go/fungi/messages"
)

// statusCmd is one screen about the node: who it is, what it can run, its
// services by state, which devices are online, and the access entries.
type statusCmd struct{ jsonFlag }

// nodeStatus is everything `fungi status` shows, gathered from the daemon.
type nodeStatus struct {
	Node     *messages.NodeInfo
	Runtimes []*messages.RuntimeCapability
	Services []*messages.ServiceInfo
	Devices  []*messages.Device
	Access   []*messages.AccessEntry
}

// statusCallTimeout bounds each of the daemon calls status makes; they are
// all answered from the daemon's own state.
const statusCallTimeout = 10 * time.Second

func (e *env) nodeStatus(ctx context.Context, d *daemonClient) (*nodeStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, statusCallTimeout)
	defer cancel()
	var st nodeStatus
	var err error
	if st.Node, err = d.Info(ctx, &messages.InfoRequest{}); err != nil {
		return nil, err
	}
	rt, err := d.Runtimes(ctx, &messages.RuntimesRequest{})
	if err != nil {
		return nil, err
	}
	svc, err := d.List(ctx, &messages.ListServicesRequest{})
	if err != nil {
		return nil, err
	}
	dev, err := d.ListDevices(ctx, &messages.DeviceListRequest{})
	if err != nil {
		return nil, err
	}
	acc, err := d.ListAccess(ctx, &messages.AccessListRequest{})
	if err != nil {
		return nil, err
	}
	st.Runtimes, st.Services, st.Devices, st.Access = rt.Runtimes, svc.Services, dev.Devices, acc.Entries
	return &st, nil
}

func (c *statusCmd) Run(e *env) error {
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		st, err := e.nodeStatus(ctx, d)
		if err != nil {
			return err
		}
		if c.JSON {
			return printStatusJSON(e, st)
		}
		e.printStatus(st)
		return nil
	})
}

// printStatusJSON prints {"node", "runtimes", "services", "devices",
// "access"}, each in the shape of its own command's --json.
func printStatusJSON(e *env, st *nodeStatus) error {
	raw := func(m proto.Message) json.RawMessage {
		b, _ := jsonOptions.Marshal(m)
		return b
	}
	list := func(n int, at func(int) proto.Message) []json.RawMessage {
		out := make([]json.RawMessage, n)
		for i := range out {
			out[i] = raw(at(i))
		}
		return out
	}
	return printAny(e, map[string]any{
		"node":     raw(st.Node),
		"runtimes": list(len(st.Runtimes), func(i int) proto.Message { return st.Runtimes[i] }),
		"services": list(len(st.Services), func(i int) proto.Message { return st.Services[i] }),
		"devices":  list(len(st.Devices), func(i int) proto.Message { return st.Devices[i] }),
		"access":   list(len(st.Access), func(i int) proto.Message { return st.Access[i] }),
	})
}

func (e *env) printStatus(st *nodeStatus) {
	w := e.stdout
	n := humanSafe(st.Node)
	fmt.Fprintf(w, "node      %s (%s, reachability %s)\n", n.PeerId, n.Version, n.Reachability)
	fmt.Fprintf(w, "daemon    PID %d on %s\n", n.Pid, n.FungiDir)
	switch {
	case n.Dashboard != "":
		fmt.Fprintf(w, "dashboard %s (`fungi ui` prints a login link)\n", n.Dashboard)
	case n.DashboardState != "":
		fmt.Fprintf(w, "dashboard %s\n", n.DashboardState)
	}
	switch {
	case n.Names != "":
		fmt.Fprintf(w, "names     %s (`fungi access list` shows each name)\n", n.Names)
	case n.NamesState != "":
		fmt.Fprintf(w, "names     %s\n", n.NamesState)
	}
	var rts []string
	for _, r := range st.Runtimes {
		if r.Available {
			rts = append(rts, r.Name)
		} else {
			rts = append(rts, r.Name+" (unavailable)")
		}
	}
	fmt.Fprintf(w, "runtimes  %s\n", strings.Join(rts, ", "))

	byState := map[string][]string{}
	for _, s := range st.Services {
		s = humanSafe(s)
		byState[s.State] = append(byState[s.State], s.Name)
	}
	fmt.Fprintf(w, "services  %d", len(st.Services))
	states := make([]string, 0, len(byState))
	for s := range byState {
		states = append(states, s)
	}
	sort.Strings(states)
	for _, s := range states {
		fmt.Fprintf(w, "; %s: %s", s, strings.Join(byState[s], ", "))
	}
	fmt.Fprintln(w)

	var online []string
	for _, d := range st.Devices {
		if d.Connected {
			name := d.Alias
			if name == "" {
				name = d.PeerId
			}
			online = append(online, terminalSafe(name))
		}
	}
	fmt.Fprintf(w, "devices   %d, %d online", len(st.Devices), len(online))
	if len(online) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(online, ", "))
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "access    %d", len(st.Access))
	for i, a := range st.Access {
		a = humanSafe(a)
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		who := a.Alias
		if who == "" {
			who = a.PeerId
		}
		var ports []string
		for _, p := range a.Ports {
			ports = append(ports, p.LocalAddress)
		}
		fmt.Fprintf(w, "%s%s on %s at %s", sep, a.ServiceId, who, strings.Join(ports, ", "))
	}
	fmt.Fprintln(w)
}
