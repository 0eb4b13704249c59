// Package wire is what fungi's stream protocols share below both of their
// ends: the protocol IDs, the framing and its limits, the error a peer
// answers with, the stream limits a node keeps and how a refusal by them
// is explained, and whether a connection rides a relay. transport and its
// protocol packages (access, pair) import it; it imports none of them.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"
)

// FrameReader is what ReadFrame reads from: a *bufio.Reader, or a reader
// that hands back bytes read ahead before its bufio.Reader's.
type FrameReader interface {
	io.Reader
	io.ByteReader
}

// Protocol IDs. Service names never appear in them: which service a stream
// is for travels inside, after the peer was admitted.
const (
	ControlProtocol = "/fungi/control/1.0.0"
	AccessProtocol  = "/fungi/access/1.0.0"
	// AccessReuseProtocol is AccessProtocol with the bytes in chunks and
	// an end marker each way, so one stream carries one connection after
	// another (transport/access/chunks.go). A node offers both, and an
	// opener uses it with a peer that lists it.
	AccessReuseProtocol = "/fungi/access/2.0.0"
)

// Frame size limits. Only an admin's control request may carry a shipped
// wasm module; an access-role peer asks for the catalog or one entry of it,
// a few hundred bytes; an access header is a service ID and a port name.
const (
	MaxControlFrame           = 64 << 20
	MaxAccessRoleControlFrame = 64 << 10
	MaxAccessFrame            = 4 << 10
)

// ControlFrameLimit is the largest control request a peer with role may
// send: what the role may ask for, not what the protocol can carry.
func ControlFrameLimit(role string) int {
	if role == "admin" {
		return MaxControlFrame
	}
	return MaxAccessRoleControlFrame
}

// ErrFrameTooLarge is a frame whose announced length passes the limit.
var ErrFrameTooLarge = errors.New("frame too large")

// frameChunk is the first buffer of a frame and the least it grows by: a
// peer announcing 64 MiB and sending ten bytes costs 64 KiB, not 64 MiB.
const frameChunk = 64 << 10

// WriteFrame writes m as an unsigned-varint length and the protobuf bytes.
func WriteFrame(w io.Writer, m proto.Message) error {
	buf, err := AppendFrame(nil, m)
	if err != nil {
		return err
	}
	_, err = w.Write(buf)
	return err
}

// AppendFrame appends m's frame, as WriteFrame writes it, to dst: bytes
// that follow the frame can then go out in the same write.
func AppendFrame(dst []byte, m proto.Message) ([]byte, error) {
	size := proto.Size(m)
	dst = binary.AppendUvarint(dst, uint64(size))
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(dst, m)
}

// ReadFrame reads one frame of at most max bytes into m. The announced
// length is only a promise: the buffer grows with the bytes that actually
// arrive, so memory follows what a peer sent, never what it claimed.
func ReadFrame(r FrameReader, m proto.Message, max int) error {
	n, err := readLength(r)
	if err != nil {
		return err
	}
	if n > uint64(max) {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrFrameTooLarge, n, max)
	}
	b, err := readGrowing(r, int(n))
	if err != nil {
		return fmt.Errorf("frame cut short after %d bytes announced: %w", n, err)
	}
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("malformed frame: %w", err)
	}
	return nil
}

// readLength reads a frame's unsigned-varint length. A clean end before it
// is io.EOF; a failing stream is its own error, never a "bad length".
func readLength(r io.ByteReader) (uint64, error) {
	var n uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i == 0 && errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("read the frame length: %w", err)
		}
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break
		}
		n |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return n, nil
		}
	}
	return 0, errors.New("bad frame length: the varint overflows 64 bits")
}

// readGrowing reads exactly n bytes, doubling its buffer only once the
// previous one filled, so it never holds more than twice what arrived (or
// frameChunk, whichever is larger).
func readGrowing(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, 0, min(n, frameChunk))
	for len(b) < n {
		if len(b) == cap(b) {
			grown := make([]byte, len(b), min(n, len(b)+max(len(b), frameChunk)))
			copy(grown, b)
			b = grown
		}
		got, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+got]
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(b) < n {
					return nil, io.ErrUnexpectedEOF
				}
				break
			}
			return nil, err
		}
	}
	return b, nil
}
