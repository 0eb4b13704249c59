//go:build !unix

package access

import "net"

// nonBlockingWriter is nil where sockets are not known to be non-blocking:
// the stream's data then always goes through its reader.
func nonBlockingWriter(*net.TCPConn) func([]byte) int { return nil }

// ReadReady is 0 where sockets are not known to be non-blocking: the
// client's first bytes then follow the header in a write of their own.
func ReadReady(*net.TCPConn, []byte) int { return 0 }
