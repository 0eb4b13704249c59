package main

import (
	"fmt"
	"strings"

	"github.com/fungi-go/fungi/messages"
)

type catalogCmd struct {
	List    catalogListCmd    `cmd:"" aliases:"ls" help:"List the services the peer publishes."`
	Inspect catalogInspectCmd `cmd:"" help:"Show one published service."`
}

type catalogListCmd struct {
	peerFlag
	jsonFlag
}

func (c *catalogListCmd) Run(e *env) error {
	req := &messages.Envelope{Body: &messages.Envelope_Catalog{Catalog: &messages.CatalogRequest{}}}
	return e.remoteOne(c.Peer, req, func(env *messages.Envelope) error {
		list := env.GetCatalogList().GetServices()
		if c.JSON {
			return printJSONList(e.stdout, list)
		}
		if len(list) == 0 {
			fmt.Fprintln(e.stderr, "the peer publishes no services (a manifest publishes with spec.expose.enabled: true)")
			return nil
		}
		w := table(e.stdout)
		fmt.Fprintln(w, "SERVICE ID\tNAME\tUSAGE\tPORTS\tSTATE")
		for _, s := range list {
			s = humanSafe(s)
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.ServiceId, s.DisplayName, usageText(s.Usage, s.Path), catalogPorts(s), s.State)
		}
		return w.Flush()
	})
}

func usageText(usage, path string) string {
	if usage == "web" && path != "" {
		return "web " + path
	}
	return usage
}

// catalogPorts names a service's ports; an external service's with the
// target the peer connects them to, so a user sees where an attach leads.
func catalogPorts(s *messages.CatalogEntry) string {
	var names []string
	for _, p := range s.Ports {
		if p.Target != "" {
			names = append(names, p.Name+" -> "+p.Target)
			continue
		}
		names = append(names, p.Name)
	}
	return strings.Join(names, ",")
}

type catalogInspectCmd struct {
	peerFlag
	ServiceID string `arg:"" name:"service-id" help:"The service ID the peer publishes."`
	jsonFlag
}

func (c *catalogInspectCmd) Run(e *env) error {
	req := &messages.Envelope{Body: &messages.Envelope_CatalogInspect{CatalogInspect: &messages.CatalogInspect{ServiceId: c.ServiceID}}}
	return e.remoteOne(c.Peer, req, func(env *messages.Envelope) error {
		s := env.GetCatalogEntry()
		if c.JSON {
			return printJSON(e.stdout, s)
		}
		s = humanSafe(s)
		w := table(e.stdout)
		fmt.Fprintf(w, "Service ID:\t%s\nName:\t%s\nUsage:\t%s\nPorts:\t%s\nState:\t%s\nRuntime:\t%s\n", s.ServiceId, s.DisplayName, usageText(s.Usage, s.Path), catalogPorts(s), s.State, s.Runtime)
		return w.Flush()
	})
}
