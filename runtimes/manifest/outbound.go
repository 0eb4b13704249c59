package manifest

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// OutboundHTTP is spec.allowOutboundHttp: where a wasm component may send
// HTTP requests (wasi:http/outgoing-handler). The zero value, written
// `false` or left out, refuses every request.
//
// `true` is the public internet: any host name, but only addresses that
// are globally routable. A list names what the component may reach: a host
// name (api.example.com) reaches that name at public addresses only; an
// address (192.168.1.10, fd00::1) or a network (192.168.1.0/24) reaches
// the addresses it covers, private, loopback and link-local ones included.
// A name or an address may carry a port (api.example.com:443,
// 192.168.1.10:8123, [fd00::1]:8080) to allow that port only; a network
// covers every port.
type OutboundHTTP struct {
	// Internet is `allowOutboundHttp: true`.
	Internet bool
	// Allow is the list form, in the manifest's order.
	Allow []OutboundTarget
}

// Enabled reports whether the component may send any request at all.
func (o OutboundHTTP) Enabled() bool { return o.Internet || len(o.Allow) > 0 }

// MarshalYAML writes the manifest spelling back: true, false or the list.
func (o OutboundHTTP) MarshalYAML() (any, error) {
	if len(o.Allow) == 0 {
		return o.Internet, nil
	}
	out := make([]string, len(o.Allow))
	for i, t := range o.Allow {
		out[i] = t.String()
	}
	return out, nil
}

// OutboundTarget is one entry of an allowOutboundHttp list: a host name, or
// an address or network, with an optional port.
type OutboundTarget struct {
	// Name is a host name in lower case without a final dot; empty when
	// the entry is an address or a network.
	Name string
	// Network is what an address (as a /32 or /128) or network entry
	// covers; the zero Prefix when the entry is a name.
	Network netip.Prefix
	// Port limits the entry to one port; 0 allows every port.
	Port int
}

// String spells the entry as a manifest would.
func (t OutboundTarget) String() string {
	host := t.Name
	if host == "" {
		host = t.Network.String()
		if t.Network.IsSingleIP() {
			host = t.Network.Addr().String()
		}
	}
	if t.Port == 0 {
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(t.Port))
}

var outboundType = reflect.TypeOf(OutboundHTTP{})

const outboundForms = "true (the public internet), false, or a list of host names, addresses and networks, e.g. [api.example.com, 192.168.1.10, 10.0.0.0/8]"

func (d *decoder) decodeOutbound(n *yaml.Node, v reflect.Value, path string) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!bool":
		var b bool
		_ = n.Decode(&b)
		v.Set(reflect.ValueOf(OutboundHTTP{Internet: b}))
		return
	case n.Kind != yaml.SequenceNode:
		d.fail(n, path, "must be %s; found %s", outboundForms, kindName(n))
		return
	}
	var o OutboundHTTP
	for i, item := range n.Content {
		at := fmt.Sprintf("%s[%d]", path, i)
		if item.Kind == yaml.AliasNode {
			if d.aliasDepth++; !d.charge(item.Alias, item) {
				d.aliasDepth--
				return
			}
			d.aliasDepth--
			item = item.Alias
		}
		if item.Kind != yaml.ScalarNode || isNull(item) || item.Tag == "!!bool" {
			d.fail(item, at, "must be a host name, an address or a network, found %s", kindName(item))
			continue
		}
		t, err := ParseOutboundTarget(item.Value)
		if err != nil {
			d.fail(item, at, "%v", err)
			continue
		}
		o.Allow = append(o.Allow, t)
	}
	v.Set(reflect.ValueOf(o))
}

// ParseOutboundTarget reads one entry of an allowOutboundHttp list.
func ParseOutboundTarget(s string) (OutboundTarget, error) {
	entry := strings.TrimSpace(s)
	switch {
	case entry == "":
		return OutboundTarget{}, fmt.Errorf("is empty; give a host name, an address or a network")
	case strings.Contains(entry, "://") || strings.ContainsAny(entry, "@?#"):
		return OutboundTarget{}, fmt.Errorf("%q is not a host: give a host name, an address or a network, without scheme or path (e.g. api.example.com)", short(entry))
	case strings.Contains(entry, "*"):
		return OutboundTarget{}, fmt.Errorf("%q: wildcards are not supported; list each host name, or a network of addresses", short(entry))
	}
	if strings.Contains(entry, "/") {
		p, err := netip.ParsePrefix(entry)
		if err != nil {
			return OutboundTarget{}, fmt.Errorf("%q is not a network: write it as an address and a prefix length, e.g. 192.168.1.0/24 or fd00::/8 (a network covers every port, so it takes none)", short(entry))
		}
		if p != p.Masked() {
			return OutboundTarget{}, fmt.Errorf("%q has bits set past its prefix length; write the network %s, or the single address %s", entry, p.Masked(), p.Addr())
		}
		return OutboundTarget{Network: p}, nil
	}
	host, port := entry, 0
	// One colon is a port; more is an IPv6 address, which takes a port only
	// in brackets.
	if strings.HasPrefix(entry, "[") || strings.Count(entry, ":") == 1 {
		h, p, err := net.SplitHostPort(entry)
		if err != nil {
			return OutboundTarget{}, fmt.Errorf("%q is not host:port: write api.example.com:443, 192.168.1.10:8080 or [fd00::1]:8080", short(entry))
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return OutboundTarget{}, fmt.Errorf("%q: the port must be from 1 to 65535", short(entry))
		}
		host, port = h, n
		if strings.HasPrefix(entry, "[") && !strings.Contains(h, ":") {
			return OutboundTarget{}, fmt.Errorf("%q: brackets are for IPv6 addresses; write %s", short(entry), net.JoinHostPort(h, p))
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return OutboundTarget{}, fmt.Errorf("%q: an address with a zone cannot be listed; list the address without %%%s", short(entry), a.Zone())
		}
		return OutboundTarget{Network: netip.PrefixFrom(a, a.BitLen()), Port: port}, nil
	}
	name, err := hostName(host)
	if err != nil {
		return OutboundTarget{}, err
	}
	return OutboundTarget{Name: name, Port: port}, nil
}

// hostName checks a DNS host name and returns it in lower case without a
// final dot, the form names are compared in.
func hostName(host string) (string, error) {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%q is not a host name, an address or a network: %s", short(host), why)
	}
	if len(name) == 0 || len(name) > 253 {
		return bad("a host name has 1 to 253 characters")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return bad("each dot-separated part has 1 to 63 characters")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return bad("a part may not start or end with a hyphen")
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return bad("use letters, digits, hyphens and dots")
			}
		}
	}
	// 10.1 or 127.1 would be read as an address by some resolvers; a real
	// top-level domain is never only digits.
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return bad("it looks like an incomplete address; write all four parts (e.g. 10.0.0.1) or a network (10.0.0.0/8)")
	}
	return name, nil
}
