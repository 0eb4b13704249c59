package config

import (
	"fmt"
	"net"
)

// defaultListen is where a new node listens: TCP and QUIC on every IPv4
// address, and on every IPv6 one too wherever the kernel has IPv6 (a node
// on a machine with it turned off would otherwise refuse to start).
func defaultListen() []string {
	out := []string{
		fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultPort),
		fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", DefaultPort),
	}
	if hasIPv6() {
		out = append(out,
			fmt.Sprintf("/ip6/::/tcp/%d", DefaultPort),
			fmt.Sprintf("/ip6/::/udp/%d/quic-v1", DefaultPort))
	}
	return out
}

// hasIPv6 reports whether this machine can bind an IPv6 socket.
func hasIPv6() bool {
	c, err := net.ListenPacket("udp6", "[::]:0")
	if err != nil {
		return false
	}
	c.Close()
	return true
}
