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
	// LookupNetIP resolves a target host name; nil means the system
	// resolver. Tests set it so that no name goes to the machine's resolver.
	LookupNetIP func(ctx context.Context, host string) ([]netip.Addr, error)
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
	if cfg.LookupNetIP == nil {
		cfg.LookupNetIP = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
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
	_, err := p.Resolve(ctx, host)
	return err
}

// Resolve is Allowed that also returns the address to connect to: every
// connection to a target (a probe, an access stream) dials the address
// checked here, never the name again, so a name re-pointed between the
// check and the connection cannot lead anywhere the owner did not allow.
// A name the owner listed by name may resolve to any address but the
// link-local, multicast and unspecified ones (a cloud's metadata service
// is link-local): listing a name trusts it, not whatever it is re-pointed
// to next.
func (p *Provider) Resolve(ctx context.Context, host string) (netip.Addr, error) {
	if host == "localhost" {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		if !p.addrAllowed(a) {
			return netip.Addr{}, p.refusal(host, a)
		}
		return a, nil
	}
	listed := false
	for _, entry := range p.allowedHosts() {
		if strings.EqualFold(strings.TrimSpace(entry), host) {
			listed = true
		}
	}
	rctx, cancel := context.WithTimeout(ctx, p.cfg.ProbeTimeout)
	defer cancel()
	ips, err := p.cfg.LookupNetIP(rctx, host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("the target host %s does not resolve: %v", host, err)
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("the target host %s resolves to no address", host)
	}
	for _, a := range ips {
		a = a.Unmap()
		switch {
		case listed && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsMulticast() || a.IsUnspecified()):
			return netip.Addr{}, fmt.Errorf("the target host %s resolves to %s, a link-local, multicast or unspecified address, which a name in %s never reaches; list the address itself if that is meant", host, a, AllowedHostsKey)
		case !listed && !p.addrAllowed(a):
			return netip.Addr{}, p.refusal(host, a)
		}
	}
	return ips[0].Unmap(), nil
}

func (p *Provider) refusal(host string, a netip.Addr) error {
	return fmt.Errorf("the target %s is not on this machine, and this node does not allow publishing other hosts: add it (or its network, e.g. %s) to %s in config.yaml, then pull again", host, suggestNetwork(a), AllowedHostsKey)
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

// probe connects to every target once, at the address Resolve checks, as
// an access stream would.
func (p *Provider) probe(ctx context.Context, targets []string) error {
	for _, t := range targets {
		host, port, err := net.SplitHostPort(t)
		if err != nil {
			return err
		}
		addr, err := p.Resolve(ctx, host)
		if err != nil {
			return err
		}
		d := net.Dialer{Timeout: p.cfg.ProbeTimeout}
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr.String(), port))
		if err != nil {
			return fmt.Errorf("%s does not answer: %s", t, probeReason(err))
		}
		conn.Close()
	}
	return nil
}

// DialAddress is where an access stream to a published target host:port
// connects now: the address the allowance is checked on at this moment
// (config may have changed, a name may point elsewhere since the pull).
func (p *Provider) DialAddress(ctx context.Context, host string, port int) (string, error) {
	addr, err := p.Resolve(ctx, host)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(addr.String(), strconv.Itoa(port)), nil
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
