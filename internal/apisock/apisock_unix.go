//go:build !windows

package apisock

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// Address is the daemon's endpoint for the node folder dir: dir/fungi.sock.
func Address(dir string) string { return filepath.Join(dir, "fungi.sock") }

// Listen listens on the API socket, mode 0600 from the moment it exists
// (umask), so no other user can connect in between. A socket file left by a
// daemon that died is removed; the caller holds the home lock, which says no
// daemon owns it.
func Listen(address string) (net.Listener, error) {
	os.Remove(address)
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", address)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", address, err)
	}
	if err := os.Chmod(address, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Remove deletes the socket file once the daemon stops listening.
func Remove(address string) { os.Remove(address) }

func dial(ctx context.Context, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", address)
}
