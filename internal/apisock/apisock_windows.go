//go:build windows

package apisock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/Microsoft/go-winio"
)

// Address is the daemon's named pipe for the node folder dir. Pipes live in
// one namespace per machine, so the name carries a hash of the folder's
// path: two homes never share a pipe.
func Address(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	sum := sha256.Sum256([]byte(strings.ToLower(abs)))
	return `\\.\pipe\fungi-` + hex.EncodeToString(sum[:8])
}

// ownerOnly is the pipe's security descriptor: full access for the owner
// (the user running the daemon) and LocalSystem, nobody else; whoever
// opens the pipe controls the node.
const ownerOnly = "D:P(A;;GA;;;OW)(A;;GA;;;SY)"

// Listen creates the named pipe, refusing remote clients.
func Listen(address string) (net.Listener, error) {
	ln, err := winio.ListenPipe(address, &winio.PipeConfig{SecurityDescriptor: ownerOnly, InputBufferSize: 64 << 10, OutputBufferSize: 64 << 10})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is another fungi daemon running on this folder?)", address, err)
	}
	return ln, nil
}

// Remove does nothing: a named pipe goes away with its last handle.
func Remove(string) {}

func dial(ctx context.Context, address string) (net.Conn, error) {
	return winio.DialPipeContext(ctx, address)
}
