// Package apisock is where the CLI meets its daemon: a Unix socket in the
// node's folder, mode 0600, on Unix; a named pipe only the owner may open on
// Windows. The daemon listens with Listen, the CLI dials with Dial; both
// name the endpoint after the node's folder, so one daemon per home.
package apisock

import (
	"context"
	"net"
	"time"
)

// DialTimeout bounds the first contact with the daemon; a local endpoint
// answers at once unless the daemon is stuck.
const DialTimeout = 2 * time.Second

// DialContext dials the endpoint at address (see Address) within ctx.
func DialContext(ctx context.Context, address string) (net.Conn, error) {
	return dial(ctx, address)
}
