// Package external is the runtime provider for services that already run:
// sshd, a NAS page, a printer on the LAN. It starts nothing. A service's
// "instance" is a watch on its target address: start succeeds once the
// target answers, and the instance ends with the reason as soon as it stops
// answering, so the service actor's restart policy re-probes it with
// backoff and the catalog shows it down meanwhile.
package external

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fungi-go/fungi/messages"
	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/manifest"
)

// AllowedHostsKey is the config key that lets services publish targets on
// other hosts; errors name it so the owner knows what to set.
const AllowedHostsKey = "external.allowedHosts"

// Config is what the node's owner allows and how often targets are probed.
type Config struct {
	// AllowedHosts are hosts (IP addresses, CIDR networks or host names)
	// besides loopback that services may publish.
	AllowedHosts []string
	// ProbeInterval is how often a running target is checked; 0 means 5 s
	// for a target on this machine (read from the socket tables, nothing is
	// sent to it) and 30 s for another host (a connection, which the
	// target may log).
	ProbeInterval time.Duration
	// ProbeTimeout bounds one connection attempt; 0 means 3 s.
	ProbeTimeout time.Duration
}

// Provider publishes existing TCP services.
type Provider struct {
	cfg Config
	// hosts is cfg.AllowedHosts as config.yaml says now: SetAllowedHosts
	// replaces it while pulls read it, so it is swapped whole, never edited.
	hosts atomic.Pointer[[]string]
}

var _ runtimes.Provider = (*Provider)(nil)

// New returns a provider with cfg's allowances.
func New(cfg Config) *Provider {
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 3 * time.Second
	}
	p := &Provider{cfg: cfg}
	p.SetAllowedHosts(cfg.AllowedHosts)
	return p
}

// SetAllowedHosts replaces the hosts besides loopback that services may
// publish (config.yaml's external.allowedHosts, reloaded while the daemon
// runs); later pulls and starts check against the new list.
func (p *Provider) SetAllowedHosts(hosts []string) {
	h := slices.Clone(hosts)
	p.hosts.Store(&h)
}

func (p *Provider) allowedHosts() []string { return *p.hosts.Load() }

// Runtime implements runtimes.Provider.
func (p *Provider) Runtime() string { return manifest.RuntimeExternal }

// Capability implements runtimes.Provider.
func (p *Provider) Capability(context.Context) *messages.RuntimeCapability {
	detail := "existing TCP services on this host (loopback)"
	if len(p.allowedHosts()) > 0 {
		detail += "; also " + strings.Join(p.allowedHosts(), ", ")
	} else {
		detail += "; other hosts need " + AllowedHostsKey
	}
	return &messages.RuntimeCapability{
		Name:             manifest.RuntimeExternal,
		Available:        true,
		Engine:           "built in (TCP probe)",
		Detail:           detail,
		ManifestRuntimes: []string{manifest.RuntimeExternal},
	}
}

// Fetch implements runtimes.Provider: there is nothing to fetch, but the
// target must be one the owner allows, so a refused target is refused at
// pull rather than at the first start.
func (p *Provider) Fetch(ctx context.Context, req runtimes.FetchRequest, progress func(*messages.PullProgress)) (runtimes.Artifact, error) {
	host := Host(req.Manifest)
	if err := p.Allowed(ctx, host); err != nil {
		return runtimes.Artifact{}, err
	}
	progress(&messages.PullProgress{Message: "publishing the existing service at " + host})
	return runtimes.Artifact{Ref: host}, nil
}

// Host is the target host a manifest names, loopback when it names none.
func Host(m *manifest.Manifest) string {
	if h := strings.TrimSpace(m.Spec.Source.Host); h != "" {
		return h
	}
	return "127.0.0.1"
}

// Allowed reports whether services may publish host: loopback always, other
// hosts only when config lists them (an address, a network, or the name).
// A name is resolved, and every address it resolves to must be allowed,
// so an allowed name cannot be pointed at another network later.
func (p *Provider) Allowed(ctx context.Context, host string) error {
	if host == "localhost" {
		return nil
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else {
		for _, entry := range p.allowedHosts() {
			if strings.EqualFold(strings.TrimSpace(entry), host) {
				return nil
			}
		}
		rctx, cancel := context.WithTimeout(ctx, p.cfg.ProbeTimeout)
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
		if err != nil {
			return fmt.Errorf("the target host %s does not resolve: %v", host, err)
		}
		for _, ip := range ips {
			addrs = append(addrs, ip.Unmap())
		}
	}
	for _, a := range addrs {
		if !p.addrAllowed(a) {
			return fmt.Errorf("the target %s is not on this machine, and this node does not allow publishing other hosts: add it (or its network, e.g. %s) to %s in config.yaml, then pull again", host, suggestNetwork(a), AllowedHostsKey)
		}
	}
	return nil
}

func (p *Provider) addrAllowed(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	for _, entry := range p.allowedHosts() {
		entry = strings.TrimSpace(entry)
		if pfx, err := netip.ParsePrefix(entry); err == nil && pfx.Contains(a) {
			return true
		}
		if b, err := netip.ParseAddr(entry); err == nil && b.Unmap() == a {
			return true
		}
	}
	return false
}

func suggestNetwork(a netip.Addr) string {
	bits := 24
	if a.Is6() {
		bits = 64
	}
	pfx, _ := a.Prefix(bits)
	return pfx.String()
}

// Start implements runtimes.Provider: the service is "running" once every
// port of its target answers.
func (p *Provider) Start(ctx context.Context, spec runtimes.InstanceSpec) (runtimes.Instance, error) {
	host := Host(spec.Manifest)
	if err := p.Allowed(ctx, host); err != nil {
		return nil, err
	}
	var targets []string
	for _, port := range spec.Ports {
		targets = append(targets, net.JoinHostPort(host, strconv.Itoa(port.ServicePort)))
	}
	if len(targets) == 0 {
		return nil, errors.New("an external service names at least one port (servicePort: the port the existing service listens on)")
	}
	if err := p.probe(ctx, targets); err != nil {
		return nil, err
	}
	fmt.Fprintf(spec.Log, "fungi: %s publishes %s (already running; fungi started nothing)\n", spec.Name, strings.Join(targets, ", "))
	w := &watch{p: p, targets: targets, stop: make(chan struct{}), done: make(chan struct{}), log: spec.Log}
	w.local = isLoopbackHost(host)
	w.interval = p.cfg.ProbeInterval
	if w.interval <= 0 {
		w.interval = 30 * time.Second
		if w.local {
			w.interval = 5 * time.Second
		}
	}
	go w.run()
	return w, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// check is one probe of a running watch: a local target by the socket
// tables where they can be read, otherwise by connecting.
func (w *watch) check(ctx context.Context) error {
	if w.local {
		allKnown := true
		for _, t := range w.targets {
			_, p, _ := net.SplitHostPort(t)
			port, _ := strconv.Atoi(p)
			up, known := listensLocally(port)
			if !known {
				allKnown = false
				break
			}
			if !up {
				return fmt.Errorf("%s does not answer: nothing listens on port %d any more (is the service running?)", t, port)
			}
		}
		if allKnown {
			return nil
		}
	}
	return w.p.probe(ctx, w.targets)
}

// probe connects to every target once.
func (p *Provider) probe(ctx context.Context, targets []string) error {
	for _, t := range targets {
		d := net.Dialer{Timeout: p.cfg.ProbeTimeout}
		conn, err := d.DialContext(ctx, "tcp", t)
		if err != nil {
			return fmt.Errorf("%s does not answer: %s", t, probeReason(err))
		}
		conn.Close()
	}
	return nil
}

func probeReason(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is the service running? check source.host and servicePort)"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the host (is it on this network and switched on?)"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "no answer within the probe timeout (a firewall, or the host is down)"
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Remove implements runtimes.Provider: nothing was created, nothing is
// removed.
func (p *Provider) Remove(context.Context, string) error { return nil }

// watch is a published target that is being probed.
type watch struct {
	p        *Provider
	targets  []string
	log      io.Writer // the service log
	local    bool
	interval time.Duration
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	err      error
}

func (w *watch) run() {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	// A stop ends a probe under way as well as the wait for the next.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-w.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := w.check(ctx)
		select {
		case <-w.stop:
			return
		default:
		}
		if err != nil {
			w.err = fmt.Errorf("the published service stopped answering: %w", err)
			fmt.Fprintf(w.log, "fungi: %v\n", w.err)
			return
		}
	}
}

// Stop implements runtimes.Instance: unpublishing stops the watch; the
// target itself keeps running, it was never fungi's.
func (w *watch) Stop(context.Context) error {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
	return nil
}

func (w *watch) Done() <-chan struct{} { return w.done }

func (w *watch) Err() error {
	select {
	case <-w.stop:
		return nil
	default:
		return w.err
	}
}
