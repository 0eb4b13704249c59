package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// exposeFlags describe a service that already runs, for `service expose`
// and its remote form.
type exposeFlags struct {
	Name        string `arg:"" help:"Service name ([a-z0-9-])."`
	Port        int    `required:"" help:"Port the existing service listens on (e.g. 22 for sshd)."`
	Host        string `help:"Host it runs on (default 127.0.0.1); other hosts need external.allowedHosts in config.yaml."`
	Usage       string `enum:",web,ssh,tcp,raw" default:"" help:"What it is: web, ssh, tcp or raw (default: guessed from the port)."`
	DisplayName string `name:"display-name" help:"Name shown in peers' catalog (default: the service name)."`
	NoStart     bool   `name:"no-start" help:"Register it stopped; publish later with service start."`
	jsonFlag
}

func (f *exposeFlags) request() (*messages.PullServiceRequest, error) {
	raw, err := manifest.External(manifest.ExternalOptions{Name: f.Name, Host: f.Host, Port: f.Port, Usage: f.Usage, DisplayName: f.DisplayName})
	if err != nil {
		return nil, err
	}
	return &messages.PullServiceRequest{ManifestYaml: raw}, nil
}

type serviceExposeCmd struct{ exposeFlags }

// Run writes the manifest, pulls it and starts it: publishing an existing
// service is one command, as `tailscale serve` is.
func (c *serviceExposeCmd) Run(e *env) error {
	req, err := c.request()
	if err != nil {
		return err
	}
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		info, err := pull(ctx, d, req, e.stderr)
		if err != nil {
			return err
		}
		if !c.NoStart {
			started, err := d.Start(ctx, &messages.StartService{Name: info.Name, Once: true})
			if err != nil {
				// Nothing to publish yet: the service stays registered,
				// stopped, rather than tried again when the node restarts.
				_, stopErr := d.Stop(ctx, &messages.StopService{Name: info.Name})
				return exposeFailed(err, stopErr, c.Name, "fungi service start")
			}
			info = started
		}
		return e.printExposed(info, c.JSON, "fungi service start")
	})
}

func (e *env) printExposed(info *messages.ServiceInfo, asJSON bool, startCmd string) error {
	if asJSON {
		return printJSON(e.stdout, info)
	}
	info = humanSafe(info)
	if info.State != "running" {
		fmt.Fprintf(e.stdout, "exposed %s (%s, not published yet): %s\n", info.Name, info.State, portsText(info))
		fmt.Fprintf(e.stderr, "publish it with: %s %s\n", startCmd, info.Name)
		return nil
	}
	fmt.Fprintf(e.stdout, "published %s: %s\n", info.Name, portsText(info))
	return nil
}

type remoteExposeCmd struct {
	peerFlag
	exposeFlags
}

func (c *remoteExposeCmd) Run(e *env) error {
	req, err := c.request()
	if err != nil {
		return err
	}
	return e.withDaemon(func(ctx context.Context, d *daemonClient) error {
		var info *messages.ServiceInfo
		err := e.remote(ctx, d, c.Peer, &messages.Envelope{Body: &messages.Envelope_Pull{Pull: req}}, func(env *messages.Envelope) error {
			if p := env.GetPullProgress(); p != nil {
				printProgress(e.stderr, p)
			}
			if s := env.GetService(); s != nil {
				info = s
			}
			return nil
		})
		if err != nil {
			return err
		}
		if info == nil {
			return errors.New("the peer ended the pull without a result")
		}
		if !c.NoStart {
			start := &messages.Envelope{Body: &messages.Envelope_Start{Start: &messages.StartService{Name: info.Name, Once: true}}}
			err := e.remote(ctx, d, c.Peer, start, func(env *messages.Envelope) error {
				if s := env.GetService(); s != nil {
					info = s
				}
				return nil
			})
			if err != nil {
				stop := &messages.Envelope{Body: &messages.Envelope_Stop{Stop: &messages.StopService{Name: info.Name}}}
				stopErr := e.remote(ctx, d, c.Peer, stop, func(*messages.Envelope) error { return nil })
				return exposeFailed(err, stopErr, c.Name, "fungi peer admin service start")
			}
		}
		return e.printExposed(info, c.JSON, "fungi peer admin service start")
	})
}

// exposeFailed says why a service just exposed did not start, and that it
// is left registered and stopped for a start by hand once what it
// publishes listens. The start was asked once, so the node tried nothing
// in the background and its answer offers nothing of the kind.
func exposeFailed(startErr, stopErr error, name, startCmd string) error {
	why := message(startErr)
	if stopErr != nil {
		return fmt.Errorf("%s\n%s is registered and could not be stopped (%s): the node tries it again when it restarts; `fungi service stop %s` prevents that", why, name, message(stopErr), name)
	}
	return fmt.Errorf("%s\n%s is registered, stopped: nothing is tried in the background; once the service it publishes listens, run `%s %s`", why, name, startCmd, name)
}
