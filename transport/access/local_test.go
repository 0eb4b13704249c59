//go:build unix

package access

import (
	"net"
	"syscall"
	"testing"
)

// A service on this machine is dialled without TCP keep-alive, one on
// another machine with Go's default.
func TestServiceDialerKeepAlive(t *testing.T) {
	for addr, off := range map[string]bool{
		"127.0.0.1:8080":  true,
		"127.0.0.5:80":    true,
		"[::1]:22":        true,
		"192.168.1.20:80": false,
		"[fd00::2]:443":   false,
		"nas.local:445":   false,
		"not an address":  false,
	} {
		d := serviceDialer(addr)
		if got := d.KeepAlive < 0; got != off {
			t.Errorf("%s: keep-alive off = %v, want %v", addr, got, off)
		}
	}
}

// The local end of an access entry, and the connection to a local
// service, carry no keep-alive socket option.
func TestLocalConnectionsWithoutKeepAlive(t *testing.T) {
	ln, err := ListenLocal("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	dialled, err := dialService(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialled.Close()
	in := <-accepted
	defer in.Close()
	for name, c := range map[string]net.Conn{"accepted": in, "dialled": dialled} {
		if keepAliveOn(t, c) {
			t.Errorf("%s connection has SO_KEEPALIVE set", name)
		}
	}
	// The check itself can see the option: Go's default dial sets it.
	plain, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if !keepAliveOn(t, plain) {
		t.Fatal("a default dial shows no SO_KEEPALIVE: the check cannot see it")
	}
}

func keepAliveOn(t *testing.T, c net.Conn) bool {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	rc.Control(func(fd uintptr) { v, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE) })
	if serr != nil {
		t.Fatal(serr)
	}
	return v != 0
}
