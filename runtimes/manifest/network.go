package manifest

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Network is spec.network: what a wasm component may reach over
// wasi:sockets besides its own ports. Listening needs nothing here: a
// component may listen on the ports spec.ports lists (fungi binds each on
// 127.0.0.1 at its host port), and nowhere else.
type Network struct {
	// Connect lists the host:port pairs the component may open TCP
	// connections and send UDP datagrams to; a host is an address
	// (192.168.1.10:5432, [fd00::1]:53) or a name (db.home.arpa:5432),
	// and only the names listed here can be looked up
	// (wasi:sockets/ip-name-lookup). Empty denies every connection.
	Connect []string `yaml:"connect"`
}

// MaxConnect is the most entries spec.network.connect may list.
const MaxConnect = 256

// ParseConnectTarget reads one spec.network.connect entry: a host name or
// an address, and a port.
func ParseConnectTarget(s string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port: write db.home.arpa:5432, 192.168.1.10:5432 or [fd00::1]:5432", short(s))
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("%q: the port must be from 1 to 65535", short(s))
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", 0, fmt.Errorf("%q: an address with a zone cannot be listed; list the address without %%%s", short(s), a.Zone())
		}
		if a.IsUnspecified() || a.IsMulticast() {
			return "", 0, fmt.Errorf("%q: %s is not an address a connection can reach", short(s), a)
		}
		return a.String(), n, nil
	}
	name, err := hostName(h)
	if err != nil {
		return "", 0, err
	}
	return name, n, nil
}

func (d *decoder) validateNetwork(s *Spec) {
	if len(s.Network.Connect) > 0 && s.Runtime != RuntimeWasmtime {
		d.bad("spec.network", "is for wasmtime services (components' wasi:sockets); a %s service's network is its runtime's", s.Runtime)
		return
	}
	for i, entry := range s.Network.Connect {
		at := fmt.Sprintf("spec.network.connect[%d]", i)
		host, port, err := ParseConnectTarget(entry)
		if err != nil {
			d.bad(at, "%v", err)
			continue
		}
		s.Network.Connect[i] = net.JoinHostPort(host, strconv.Itoa(port))
	}
}
