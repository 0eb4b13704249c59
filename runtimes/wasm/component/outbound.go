package component

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Outbound HTTP (wasi:http/outgoing-handler) reaches only what an
// OutboundPolicy allows. The check is made twice: when the guest hands its
// request to the host (no name is resolved for a request that can never be
// allowed), and when the connection is made, on the very address dialled:
// a name is resolved once, every address is checked, and only a checked
// address is dialled, so a name re-pointed after the check gets nowhere.

// OutboundRule is one host, address or network a policy allows.
type OutboundRule struct {
	// Name is a host name in lower case without a final dot; empty for an
	// address or network rule. A name reaches public addresses only.
	Name string
	// Network is the address (a /32 or /128) or network the rule covers,
	// private, loopback and link-local addresses included; the zero Prefix
	// for a name rule.
	Network netip.Prefix
	// Port limits the rule to one port; 0 allows every port.
	Port int
}

// OutboundPolicy says where a component's outgoing HTTP requests may go. A
// nil policy refuses every request. It is safe for concurrent use and must
// not be copied once used (it keeps the connections it made).
type OutboundPolicy struct {
	// Internet allows every public (globally routable) address, under any
	// host name.
	Internet bool
	// Allow lists the names, addresses and networks allowed besides.
	Allow []OutboundRule
	// Setting names where the policy was written (e.g. the manifest key),
	// for the line a refusal writes to the service log.
	Setting string
	// Lookup resolves a host name; nil uses the system resolver. Tests
	// inject their own so that no name goes to the machine's resolver.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)

	once   sync.Once
	client *http.Client
}

// Bounds on the connections a policy makes for its guests.
const (
	// outboundDialTimeout bounds one name lookup and one connect.
	outboundDialTimeout = 10 * time.Second
	// maxOutboundAddrs is how many of a name's addresses are tried.
	maxOutboundAddrs = 16
)

// OutboundDeniedError is a request the policy refused.
type OutboundDeniedError struct {
	// Target is the host and port the guest asked for.
	Target string
	// Reason says why, and what would allow it.
	Reason string
}

func (e *OutboundDeniedError) Error() string {
	return fmt.Sprintf("outbound HTTP to %s refused: %s", e.Target, e.Reason)
}

// setting is the name refusals give the policy.
func (p *OutboundPolicy) setting() string {
	if p == nil || p.Setting == "" {
		return "the outbound HTTP policy"
	}
	return p.Setting
}

// nameAllowed reports whether the policy lets a request name host (lower
// case, no final dot) at port; it does not look at addresses.
func (p *OutboundPolicy) nameAllowed(host string, port int) bool {
	if p.Internet {
		return true
	}
	for _, r := range p.Allow {
		if r.Name == host && (r.Port == 0 || r.Port == port) {
			return true
		}
	}
	return false
}

// addrAllowed checks one address about to be dialled. named says the
// request named a host the policy allows; then a public address is enough.
// A refused address comes with what kind of address it is ("" when it is
// public but not listed).
func (p *OutboundPolicy) addrAllowed(addr netip.Addr, port int, named bool) (ok bool, kind string) {
	a := addr.WithZone("").Unmap()
	for _, r := range p.Allow {
		if r.Network.IsValid() && r.Network.Contains(a) && (r.Port == 0 || r.Port == port) {
			return true, ""
		}
	}
	if kind := nonPublic(a); kind != "" {
		return false, kind
	}
	return p.Internet || named, ""
}

// refusal says why addr was refused for a request to host (a name when
// named, else the address as the guest wrote it), and what would allow it.
func (p *OutboundPolicy) refusal(host string, named bool, addr netip.Addr, port int, kind string) string {
	a := addr.WithZone("").Unmap()
	if kind == "" {
		return fmt.Sprintf("%s is not listed in %s", net.JoinHostPort(host, strconv.Itoa(port)), p.setting())
	}
	what := fmt.Sprintf("%s is %s", host, kind)
	if named {
		what = fmt.Sprintf("%s resolves to %s, %s", host, a, kind)
	}
	return fmt.Sprintf("%s; %s reaches such an address only when it lists it (e.g. %q)", what, p.setting(), a.String())
}

// check decides a request for host at port before anything is resolved: an
// address is decided here, a name only says whether it may be resolved.
func (p *OutboundPolicy) check(host string, port int) error {
	target := net.JoinHostPort(host, strconv.Itoa(port))
	if p == nil {
		return &OutboundDeniedError{Target: target, Reason: "outbound HTTP is off for this component"}
	}
	if !p.Internet && len(p.Allow) == 0 {
		return &OutboundDeniedError{Target: target, Reason: fmt.Sprintf("%s allows no outbound HTTP; set it to true for the public internet, or list the hosts the component may reach", p.setting())}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if ok, kind := p.addrAllowed(a, port, false); !ok {
			return &OutboundDeniedError{Target: target, Reason: p.refusal(host, false, a, port, kind)}
		}
		return nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if !p.nameAllowed(name, port) {
		return &OutboundDeniedError{Target: target, Reason: fmt.Sprintf("%s is not listed in %s", target, p.setting())}
	}
	return nil
}

// checkRequest is check for a guest's request as the host will send it;
// a request the URL parser refuses is left to fail when it is sent.
func (p *OutboundPolicy) checkRequest(scheme, authority string) error {
	u, err := url.Parse(scheme + "://" + authority + "/")
	if err != nil || u.Hostname() == "" {
		if p == nil {
			return &OutboundDeniedError{Target: authority, Reason: "outbound HTTP is off for this component"}
		}
		return nil
	}
	port := 80
	if scheme == "https" {
		port = 443
	}
	if s := u.Port(); s != "" {
		if port, err = strconv.Atoi(s); err != nil {
			return nil
		}
	}
	return p.check(u.Hostname(), port)
}

// dial is the transport's DialContext: it dials only addresses targets
// checked, never the name itself.
func (p *OutboundPolicy) dial(ctx context.Context, network, hostport string) (net.Conn, error) {
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("outbound HTTP: bad port in %q", hostport)
	}
	addrs, err := p.targets(ctx, host, port)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: outboundDialTimeout}
	var firstErr error
	for _, a := range addrs {
		conn, err := d.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// targets is the addresses a request for host at port may be dialled at:
// the name is resolved once and every address checked. An address the
// policy does not allow is left out; when none is left the request is
// refused with why the first one was.
func (p *OutboundPolicy) targets(ctx context.Context, host string, port int) ([]netip.Addr, error) {
	if err := p.check(host, port); err != nil {
		return nil, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil // check decided it
	}
	lookupCtx, cancel := context.WithTimeout(ctx, outboundDialTimeout)
	addrs, err := p.lookup(lookupCtx, host)
	cancel()
	if err != nil {
		return nil, err
	}
	if len(addrs) > maxOutboundAddrs {
		addrs = addrs[:maxOutboundAddrs]
	}
	var allowed []netip.Addr
	reason := host + " has no address"
	for i, a := range addrs {
		if ok, kind := p.addrAllowed(a, port, true); !ok {
			if i == 0 {
				reason = p.refusal(host, true, a, port, kind)
			}
			continue
		}
		allowed = append(allowed, a)
	}
	if len(allowed) == 0 {
		return nil, &OutboundDeniedError{Target: net.JoinHostPort(host, strconv.Itoa(port)), Reason: reason}
	}
	return allowed, nil
}

func (p *OutboundPolicy) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if p.Lookup != nil {
		return p.Lookup(ctx, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// httpClient is the client the policy's requests go through: it dials only
// what the policy allows, takes no proxy from the environment (a proxy
// would make the connection for it), and hands a redirect to the guest, as
// wasi:http says, rather than following it.
func (p *OutboundPolicy) httpClient() *http.Client {
	p.once.Do(func() {
		p.client = &http.Client{
			Transport: &http.Transport{
				Proxy:                 nil,
				DialContext:           p.dial,
				TLSHandshakeTimeout:   outboundDialTimeout,
				ResponseHeaderTimeout: outboundTimeout,
				IdleConnTimeout:       30 * time.Second,
				MaxIdleConnsPerHost:   4,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
	return p.client
}

// outboundRefused writes a refusal to the service log and says whether err
// is one (the guest is then answered HTTP-request-denied).
func outboundRefused(c *cx, err error) bool {
	var denied *OutboundDeniedError
	if !errors.As(err, &denied) {
		return false
	}
	if w := c.inst.wasi.stderr; w != nil {
		fmt.Fprintf(w, "component: %v\n", denied)
	}
	return true
}

// Address blocks that are not the public internet, after IPv4-mapped
// addresses are unmapped. An IPv6 address is public only inside 2000::/3.
var nonPublicBlocks = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), `in "this network" (0.0.0.0/8)`},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "a reserved address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
	{netip.MustParsePrefix("192.88.99.0/24"), "a reserved address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fc00::/7"), "a private address (unique local)"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local NAT64 address"},
	{netip.MustParsePrefix("2001::/32"), "a Teredo tunnel address"},
	{netip.MustParsePrefix("2001::/23"), "a reserved address"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
	{netip.MustParsePrefix("3fff::/20"), "a documentation address"},
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
	global = netip.MustParsePrefix("2000::/3")
)

// nonPublic says what kind of address a is when it is not a public one,
// and "" when it is. An IPv6 address that carries an IPv4 one (NAT64,
// 6to4) is judged by the IPv4 address it leads to.
func nonPublic(a netip.Addr) string {
	a = a.WithZone("").Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			if kind := nonPublic(netip.AddrFrom4([4]byte(b[12:16]))); kind != "" {
				return kind + " (through NAT64)"
			}
			return ""
		case sixTo4.Contains(a):
			if kind := nonPublic(netip.AddrFrom4([4]byte(b[2:6]))); kind != "" {
				return kind + " (through 6to4)"
			}
			return ""
		}
	}
	for _, b := range nonPublicBlocks {
		if b.prefix.Contains(a) {
			return b.kind
		}
	}
	if a.Is6() && !global.Contains(a) {
		return "a reserved address"
	}
	return ""
}
