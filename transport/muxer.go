package transport

import (
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	goyamux "github.com/libp2p/go-yamux/v5"
)

// muxer is libp2p's yamux with larger frames: a 64 KiB frame is four TLS
// records and a goroutine hand-off, and on a bulk transfer those per-frame
// costs showed in the profile next to the cipher.
func muxer() *yamux.Transport {
	cfg := *(*goyamux.Config)(yamux.DefaultTransport)
	cfg.MaxMessageSize = 256 << 10
	return (*yamux.Transport)(&cfg)
}
