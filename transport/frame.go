package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"
)

// Protocol IDs. Service names never appear in them: which service a stream
// is for travels inside, after the peer was admitted.
const (
	ControlProtocol = "/fungi/control/1.0.0"
	AccessProtocol  = "/fungi/access/1.0.0"
)

// Frame size limits: a control envelope may carry a shipped wasm module; an
// access header is a service ID and a port name.
const (
	MaxControlFrame = 64 << 20
	MaxAccessFrame  = 4 << 10
)

// ErrFrameTooLarge is a frame whose announced length passes the limit.
var ErrFrameTooLarge = errors.New("frame too large")

// WriteFrame writes m as an unsigned-varint length and the protobuf bytes.
func WriteFrame(w io.Writer, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	buf := binary.AppendUvarint(make([]byte, 0, len(b)+binary.MaxVarintLen64), uint64(len(b)))
	_, err = w.Write(append(buf, b...))
	return err
}

// ReadFrame reads one frame of at most max bytes into m.
func ReadFrame(r *bufio.Reader, m proto.Message, max int) error {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		return fmt.Errorf("bad frame length: %w", err)
	}
	if n > uint64(max) {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrFrameTooLarge, n, max)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("frame cut short after %d bytes announced: %w", n, err)
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("malformed frame: %w", err)
	}
	return nil
}
