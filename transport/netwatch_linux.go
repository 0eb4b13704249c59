package transport

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchNet follows the kernel's routing messages (netlink): an address
// added or removed, a default route changed. Each burst of them comes out
// as one netChange once it settles.
func watchNet() (<-chan netChange, func(), error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, nil, os.NewSyscallError("netlink socket", err)
	}
	groups := uint32(unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR | unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, nil, os.NewSyscallError("netlink bind", err)
	}
	// Through the runtime's poller, so Close ends a Read in progress.
	f := os.NewFile(uintptr(fd), "netlink")
	raw := make(chan map[string]bool, 16)
	out := make(chan netChange)
	done := make(chan struct{})
	go func() {
		defer close(raw)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if errors.Is(err, unix.ENOBUFS) {
				// The kernel dropped messages: something changed.
				select {
				case raw <- map[string]bool{}:
				case <-done:
					return
				}
				continue
			}
			if err != nil {
				return
			}
			if lost, ok := parseNetlink(buf[:n]); ok {
				select {
				case raw <- lost:
				case <-done:
					return
				}
			}
		}
	}()
	go settle(raw, out, done)
	var once sync.Once
	return out, func() { once.Do(func() { close(done); f.Close() }) }, nil
}

// parseNetlink reads one datagram of routing messages: ok says whether
// any of them matters to connections (an address that can carry one, a
// default route), lost the addresses removed.
func parseNetlink(b []byte) (lost map[string]bool, ok bool) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return map[string]bool{}, true
	}
	lost = map[string]bool{}
	for i := range msgs {
		m := &msgs[i]
		switch m.Header.Type {
		case unix.RTM_NEWADDR, unix.RTM_DELADDR:
			attrs, err := syscall.ParseNetlinkRouteAttr(m)
			if err != nil {
				continue
			}
			for _, a := range attrs {
				if a.Attr.Type != unix.IFA_ADDRESS && a.Attr.Type != unix.IFA_LOCAL {
					continue
				}
				ip := net.IP(a.Value)
				if (len(ip) != net.IPv4len && len(ip) != net.IPv6len) || !usableIP(ip) {
					continue
				}
				ok = true
				if m.Header.Type == unix.RTM_DELADDR {
					lost[ip.String()] = true
				}
			}
		case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			if len(m.Data) < unix.SizeofRtMsg {
				continue
			}
			rt := (*unix.RtMsg)(unsafe.Pointer(&m.Data[0]))
			if rt.Dst_len == 0 && rt.Table == unix.RT_TABLE_MAIN {
				ok = true
			}
		}
	}
	return lost, ok
}
