//go:build !unix

package access

import "net"

// nonBlockingWriter is nil where sockets are not known to be non-blocking:
// the stream's data then always goes through its reader.
func nonBlockingWriter(*net.TCPConn) func([]byte) int { return nil }
