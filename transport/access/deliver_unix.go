//go:build unix

package access

import (
	"net"
	"syscall"
)

// nonBlockingWriter writes to conn once, without waiting: a full send
// buffer gives a short write or 0.
func nonBlockingWriter(conn *net.TCPConn) func([]byte) int {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil
	}
	return func(b []byte) int { return once(rc.Write, syscall.Write, b) }
}

// ReadReady reads what conn already holds into b, without waiting: 0 when
// nothing has arrived yet (or the client already closed, which the
// bridge's own read then finds).
func ReadReady(conn *net.TCPConn, b []byte) int {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0
	}
	return once(rc.Read, syscall.Read, b)
}

// once runs op (a read or a write) on a socket's descriptor once, through
// run (the RawConn's Read or Write), without waiting for the socket to be
// ready: Go's sockets are non-blocking, so one that is not gives EAGAIN,
// counted as 0 bytes.
func once(run func(func(uintptr) bool) error, op func(int, []byte) (int, error), b []byte) int {
	n := 0
	run(func(fd uintptr) bool {
		if m, err := op(int(fd), b); err == nil && m > 0 {
			n = m
		}
		return true
	})
	return n
}
