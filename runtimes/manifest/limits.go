package manifest

import (
	"fmt"
	"io"
	"os"
)

// Bounds on what a manifest may hold. A manifest arrives from the CLI, from
// a peer and from disk; each bound keeps a hostile one from holding the node
// up or filling its memory, and each is far above what a real service needs.
const (
	// MaxSize is the largest manifest accepted, in bytes. It is checked
	// before a byte is parsed.
	MaxSize = 1 << 20
	// MaxEnv is the most environment variables spec.env may set.
	MaxEnv = 1024
	// MaxPorts is the most entries spec.ports may list.
	MaxPorts = 64
	// MaxMounts is the most entries spec.mounts may list.
	MaxMounts = 64
	// MaxCommandArgs is the most entries spec.command may list.
	MaxCommandArgs = 1024
	// MaxOutboundHosts is the most entries spec.allowOutboundHttp may list.
	MaxOutboundHosts = 256
	// MaxReportedErrors is how many problems an error lists; the rest are
	// counted in one last line.
	MaxReportedErrors = 20
	// MaxAliasExpansion bounds the nodes the decoder may visit through YAML
	// aliases, as a multiple of the nodes written in the document...
	MaxAliasExpansion = 10
	// MaxAliasNodes ...and in absolute terms, whichever is smaller.
	MaxAliasNodes = 100_000
)

// ReadFile reads a manifest from disk without reading more than MaxSize+1
// bytes of it, so an oversized file is refused before it fills memory.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read the manifest %s: %w", path, err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("the manifest %s is larger than %d bytes (1 MiB), the most a manifest may be; a service description fits in a few kilobytes, so check that this is the right file", path, MaxSize)
	}
	return data, nil
}
