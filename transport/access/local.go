package access

import (
	"context"
	"net"
	"time"
)

// ListenLocal listens for an access entry's local connections on address,
// a loopback address. Its connections have no TCP keep-alive: a loopback
// peer that goes away is seen at once, and the four socket options per
// connection are syscalls on the way to the first byte.
func ListenLocal(address string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), "tcp", address)
}

// serviceDialTimeout bounds connecting to a published service's port.
const serviceDialTimeout = 5 * time.Second

// dialService connects to a published service at addr. A service on
// another machine (an external service on the LAN) gets Go's TCP
// keep-alive, so a bridge to a host that died unseen is torn down; one on
// this machine does not need it, and skipping it saves four syscalls
// before the first byte reaches the service.
func dialService(addr string) (net.Conn, error) {
	d := serviceDialer(addr)
	return d.Dial("tcp", addr)
}

func serviceDialer(addr string) net.Dialer {
	d := net.Dialer{Timeout: serviceDialTimeout}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			d.KeepAlive = -1
		}
	}
	return d
}
