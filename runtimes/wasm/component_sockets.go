package wasm

import (
	"net"
	"strconv"
	"strings"

	"github.com/fungi-go/fungi/runtimes"
	"github.com/fungi-go/fungi/runtimes/wasm/component"
)

// socketPolicy is what a component's wasi:sockets may do: listen on the
// service's ports, each bound on 127.0.0.1 at its host port as every service
// port is (the guest binds the manifest's servicePort, or the host port when
// the manifest gives none), and connect where spec.network.connect says.
func socketPolicy(spec runtimes.InstanceSpec) *component.SocketPolicy {
	p := &component.SocketPolicy{TCP: map[uint16]string{}, UDP: map[uint16]string{}}
	protocols := map[string]string{}
	if spec.Manifest != nil {
		for _, mp := range spec.Manifest.Spec.Ports {
			protocols[mp.Name] = strings.ToLower(mp.Protocol)
		}
		p.Connect = append(p.Connect, spec.Manifest.Spec.Network.Connect...)
	}
	for _, b := range spec.Ports {
		guest := b.ServicePort
		if guest <= 0 || guest > 65535 {
			guest = b.HostPort
		}
		host := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.HostPort))
		if protocols[b.Name] == "udp" {
			p.UDP[uint16(guest)] = host
		} else {
			p.TCP[uint16(guest)] = host
		}
	}
	return p
}
