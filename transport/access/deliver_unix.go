//go:build unix

package access

import (
	"net"
	"syscall"
)

// nonBlockingWriter writes to conn once, without waiting: Go's sockets are
// non-blocking, so a full send buffer gives a short write or EAGAIN (0).
func nonBlockingWriter(conn *net.TCPConn) func([]byte) int {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil
	}
	return func(b []byte) int {
		var n int
		rc.Write(func(fd uintptr) bool {
			m, err := syscall.Write(int(fd), b)
			if err == nil && m > 0 {
				n = m
			}
			return true
		})
		return n
	}
}

// ReadReady reads what conn already holds into b, without waiting: 0 when
// nothing has arrived yet (or the client already closed, which the
// bridge's own read then finds).
func ReadReady(conn *net.TCPConn, b []byte) int {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0
	}
	var n int
	rc.Read(func(fd uintptr) bool {
		m, err := syscall.Read(int(fd), b)
		if err == nil && m > 0 {
			n = m
		}
		return true
	})
	return n
}
