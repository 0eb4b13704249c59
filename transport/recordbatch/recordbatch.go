// Package recordbatch wraps a libp2p security transport so that one Write
// on a secured connection reaches the socket in as few writes as its size
// allows, however many records the security protocol cuts it into.
//
// crypto/tls seals a Write in records of at most 16 KiB and writes each
// record to the socket on its own: a 128 KiB frame is nine write
// syscalls, where ssh's client makes about one per 64 KiB. The records,
// their order and their bytes on the wire are unchanged; only the
// syscalls that carry them are fewer. A Write of one record or less is
// passed through as it was, so a small message leaves no later than
// before.
//
// The reading side is the mirror: crypto/tls reads a record (its header,
// then the rest) at a time, four read syscalls for each batch the peer
// wrote in one; the socket under it is read up to a batch at once and
// the records are handed out from there. A read that finds one small
// record is still one read syscall.
package recordbatch

import (
	"context"
	"net"
	"sync"
	"syscall"

	pool "github.com/libp2p/go-buffer-pool"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
)

// recordPayload is the most plaintext one TLS record carries: a Write no
// larger is one record and one write already.
const recordPayload = 16 << 10

// batchBytes is how many bytes of sealed records are held before they
// are written: a 128 KiB frame's nine records (with their 22 bytes of
// framing each) in one write.
const batchBytes = 136 << 10

// readBatch is the most one read from the socket takes: a batch as the
// peer writes it.
const readBatch = batchBytes

// Transport is a security transport whose connections write the records
// of one Write together. It negotiates and speaks exactly what the
// transport it wraps does, under the same protocol ID.
type Transport struct {
	inner sec.SecureTransport
}

var _ sec.SecureTransport = (*Transport)(nil)

// New wraps t. Wrap a transport whose Write cuts data into records
// written one by one (libp2p's TLS); one that already writes a Write at
// once gains nothing.
func New(t sec.SecureTransport) *Transport { return &Transport{inner: t} }

// ID is the wrapped transport's protocol ID.
func (t *Transport) ID() protocol.ID { return t.inner.ID() }

// SecureInbound runs the wrapped transport's handshake as the server.
func (t *Transport) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	return secure(insecure, func(c net.Conn) (sec.SecureConn, error) { return t.inner.SecureInbound(ctx, c, p) })
}

// SecureOutbound runs the wrapped transport's handshake as the client.
func (t *Transport) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	return secure(insecure, func(c net.Conn) (sec.SecureConn, error) { return t.inner.SecureOutbound(ctx, c, p) })
}

// secure runs handshake over insecure with the holding socket under it.
func secure(insecure net.Conn, handshake func(net.Conn) (sec.SecureConn, error)) (sec.SecureConn, error) {
	// Reads are batched on a socket, where each read is a syscall; on a
	// relayed connection (a stream to the relay) a read is a copy from the
	// stream's buffer, and a batch would only add another.
	_, socket := insecure.(syscall.Conn)
	held := &heldConn{Conn: insecure, batchReads: socket}
	sc, err := handshake(held)
	if err != nil {
		return nil, err
	}
	return &conn{SecureConn: sc, held: held}, nil
}

// conn is a secured connection whose large Writes hold their records
// under the security layer until the Write is sealed whole.
type conn struct {
	sec.SecureConn
	held *heldConn
	// writing keeps two large Writes from holding at once; the security
	// layer orders their records anyway.
	writing sync.Mutex
}

// Write seals b as the wrapped connection does. A record written under
// the security layer while this Write holds (a record another goroutine
// sends, a TLS KeyUpdate answered by the reader) joins the batch in the
// order it was written, so the records reach the socket in their order.
func (c *conn) Write(b []byte) (int, error) {
	if len(b) <= recordPayload {
		return c.SecureConn.Write(b)
	}
	c.writing.Lock()
	defer c.writing.Unlock()
	c.held.hold()
	n, err := c.SecureConn.Write(b)
	if ferr := c.held.release(); ferr != nil && err == nil {
		// The records were sealed but did not reach the socket; the
		// connection is broken from here on (the error sticks).
		return 0, ferr
	}
	return n, err
}

// heldConn is the socket under the security layer: while held it keeps
// what it is given in one buffer and writes it when the buffer is full or
// the hold is released.
type heldConn struct {
	net.Conn
	mu      sync.Mutex
	holding bool
	buf     []byte // from pool while holding, nil otherwise
	err     error  // the first failed write: every later one fails with it

	batchReads bool // the connection is a socket
	// read holds what one read from the socket brought beyond what the
	// security layer asked for (from pool while it holds any, nil
	// otherwise); unread is the part not handed out yet. Only the
	// security layer's reader uses them.
	read   []byte
	unread []byte
}

// Read hands out what an earlier read brought first; otherwise, on a
// socket, it reads up to readBatch bytes at once. crypto/tls asks for a
// record (at most 16 KiB and its header) at a time, and read one at a
// time a bulk transfer's receiver makes four read syscalls where the
// sender made one write.
func (h *heldConn) Read(p []byte) (int, error) {
	if len(h.unread) == 0 {
		if !h.batchReads || len(p) >= readBatch {
			return h.Conn.Read(p)
		}
		if h.read == nil {
			h.read = pool.Get(readBatch)
		}
		// An error that comes with bytes is left for the next read of
		// the socket to return: a socket's errors repeat.
		n, err := h.Conn.Read(h.read)
		if n == 0 {
			h.dropRead()
			return 0, err
		}
		h.unread = h.read[:n]
	}
	n := copy(p, h.unread)
	h.unread = h.unread[n:]
	if len(h.unread) == 0 {
		h.dropRead()
	}
	return n, nil
}

func (h *heldConn) dropRead() {
	if h.read != nil {
		pool.Put(h.read)
		h.read, h.unread = nil, nil
	}
}

func (h *heldConn) Write(b []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return 0, h.err
	}
	if !h.holding {
		return h.Conn.Write(b)
	}
	if len(h.buf)+len(b) > batchBytes {
		if err := h.flushLocked(); err != nil {
			return 0, err
		}
		if len(b) > batchBytes {
			return h.writeLocked(b)
		}
	}
	if h.buf == nil {
		h.buf = pool.Get(batchBytes)[:0]
	}
	h.buf = append(h.buf, b...)
	return len(b), nil
}

func (h *heldConn) hold() {
	h.mu.Lock()
	h.holding = true
	h.mu.Unlock()
}

// release writes what is held and ends the hold.
func (h *heldConn) release() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.holding = false
	err := h.flushLocked()
	if h.buf != nil {
		pool.Put(h.buf[:cap(h.buf)])
		h.buf = nil
	}
	return err
}

func (h *heldConn) flushLocked() error {
	if h.err != nil {
		return h.err
	}
	if len(h.buf) == 0 {
		return nil
	}
	_, err := h.writeLocked(h.buf)
	h.buf = h.buf[:0]
	return err
}

func (h *heldConn) writeLocked(b []byte) (int, error) {
	n, err := h.Conn.Write(b)
	if err != nil {
		h.err = err
	}
	return n, err
}
