package daemon

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	ma "github.com/multiformats/go-multiaddr"
)

// claimPorts checks, before the peer host starts, that every fixed port in
// listen is free, by binding it plainly (without SO_REUSEPORT) and letting
// go at once. libp2p binds TCP with SO_REUSEPORT, so a second daemon on the
// same TCP port would otherwise share it silently, and it starts when any
// one address works, so a port taken on TCP but free on UDP (or the other
// way round) would leave the node half-listening.
func claimPorts(listen []string) error {
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("listen address %q: %v", s, err)
		}
		ip, err := a.ValueForProtocol(ma.P_IP4)
		if err != nil {
			if ip, err = a.ValueForProtocol(ma.P_IP6); err != nil {
				continue // a DNS or other address; libp2p says what it makes of it
			}
		}
		if port, err := a.ValueForProtocol(ma.P_TCP); err == nil && port != "0" {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
			if err != nil {
				return portTaken(s, "TCP", port, err)
			}
			ln.Close()
		}
		if port, err := a.ValueForProtocol(ma.P_UDP); err == nil && port != "0" {
			pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, port))
			if err != nil {
				return portTaken(s, "UDP", port, err)
			}
			pc.Close()
		}
	}
	return nil
}

func portTaken(addr, proto, port string, err error) error {
	why := err.Error()
	if errors.Is(err, syscall.EADDRINUSE) {
		why = "in use"
	}
	return fmt.Errorf("cannot listen on %s: %s port %s is %s (another fungi daemon, on another folder, or another program holds it); stop that program, or give this node another port with --listen or config.yaml listen", addr, proto, port, why)
}

// checkListening refuses a host that is not listening on every address it
// was asked to: libp2p starts as long as one address works.
func checkListening(listen []string, got []ma.Multiaddr) error {
	for _, s := range listen {
		want, err := ma.NewMultiaddr(s)
		if err != nil {
			return err
		}
		found := false
		for _, g := range got {
			if sameListener(want, g) {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("cannot listen on %s: the port may be taken, or the address is not this machine's; give this node another address with --listen or config.yaml listen", s)
		}
	}
	return nil
}

// sameListener reports whether got listens where want asked: the same
// protocols and values, where a port 0 in want matches any port.
func sameListener(want, got ma.Multiaddr) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Code() != g.Code() {
			return false
		}
		if (w.Code() == ma.P_TCP || w.Code() == ma.P_UDP) && w.Value() == "0" {
			continue
		}
		if w.Value() != g.Value() {
			return false
		}
	}
	return true
}
