package component

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// wasi:sockets/ip-name-lookup.

// resolveStream is a resolve-address-stream: a lookup on its own goroutine,
// bounded by lookupTimeout.
type resolveStream struct {
	family // its pollables
	done   chan struct{}
	addrs  []netip.Addr
	err    error
	next   int
	cancel context.CancelFunc
	// allow makes an address the guest read connectable, at the ports
	// the allow-list gives the name.
	allow func(netip.Addr)
}

func (r *resolveStream) ready() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (r *resolveStream) drop() { r.cancel() }

// maxResolved bounds how many addresses one lookup gives the guest;
// MaxConnectEntries bounds how many names' addresses an instance keeps.
const (
	maxResolved = 64
	// MaxConnectEntries is the most host:port entries a SocketPolicy's
	// Connect list is expected to hold (the manifest's bound).
	MaxConnectEntries = 256
)

var lookupFuncs = map[string]hostDef{
	"resolve-addresses": {"func(network: borrow<network>, name: string) -> result<resolve-address-stream,error-code>", func(c *cx, a []any) []any {
		name := a[1].(string)
		if ip, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
			r := &resolveStream{done: make(chan struct{}), addrs: []netip.Addr{ip}, cancel: func() {}}
			close(r.done)
			return []any{Variant{Val: r}}
		}
		p := c.inst.wasi.cfg.Sockets
		host := strings.ToLower(strings.TrimSuffix(name, "."))
		var ports []uint16
		if p != nil {
			for _, entry := range p.Connect {
				h, port, err := net.SplitHostPort(entry)
				n, perr := strconv.Atoi(port)
				if err == nil && perr == nil && strings.EqualFold(strings.TrimSuffix(h, "."), host) {
					ports = append(ports, uint16(n))
				}
			}
		}
		if len(ports) == 0 {
			return []any{sockErr(c, "access-denied")}
		}
		lookup := p.Lookup
		if lookup == nil {
			lookup = func(ctx context.Context, h string) ([]netip.Addr, error) {
				return net.DefaultResolver.LookupNetIP(ctx, "ip", h)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
		r := &resolveStream{done: make(chan struct{}), cancel: cancel}
		wake := c.inst.wake
		go func() {
			addrs, err := lookup(ctx, host)
			if len(addrs) > maxResolved {
				addrs = addrs[:maxResolved]
			}
			r.addrs, r.err = addrs, err
			close(r.done)
			notify(wake)
		}()
		resolved := c.inst.wasi.sockets().resolved
		r.allow = func(ip netip.Addr) {
			for _, port := range ports {
				if len(resolved) < maxResolved*MaxConnectEntries {
					resolved[netip.AddrPortFrom(ip.Unmap(), port)] = true
				}
			}
		}
		return []any{Variant{Val: r}}
	}},
	"[method]resolve-address-stream.resolve-next-address": {"func() -> result<option<ip-address>,error-code>", func(c *cx, a []any) []any {
		r := a[0].(*resolveStream)
		if !r.ready() {
			return []any{sockErr(c, "would-block")}
		}
		if r.err != nil {
			label := "permanent-resolver-failure"
			var de *net.DNSError
			switch {
			case errors.As(r.err, &de) && de.IsNotFound:
				label = "name-unresolvable"
			case errors.As(r.err, &de) && (de.IsTemporary || de.IsTimeout), errors.Is(r.err, context.DeadlineExceeded):
				label = "temporary-resolver-failure"
			}
			return []any{sockErr(c, label)}
		}
		if r.next >= len(r.addrs) {
			return []any{Variant{Val: Variant{}}}
		}
		ip := r.addrs[r.next]
		r.next++
		if r.allow != nil {
			r.allow(ip)
		}
		return []any{Variant{Val: Variant{Case: 1, Val: lowerIP(ip)}}}
	}},
	"[method]resolve-address-stream.subscribe": {"func() -> pollable", func(c *cx, a []any) []any {
		r := a[0].(*resolveStream)
		return []any{&pollable{src: r, parent: &r.family}}
	}},
}
