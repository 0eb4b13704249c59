package yamux

import (
	"bytes"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	pool "github.com/libp2p/go-buffer-pool"
)

type streamState int

const (
	streamInit streamState = iota
	streamSYNSent
	streamSYNReceived
	streamEstablished
	streamFinished
)

type halfStreamState int

const (
	halfOpen halfStreamState = iota
	halfClosed
	halfReset
)

// Stream is used to represent a logical stream
// within a session.
type Stream struct {
	sendWindow uint32

	memorySpan MemoryManager

	id      uint32
	session *Session

	recvWindow uint32
	epochStart time.Time

	state                 streamState
	writeState, readState halfStreamState
	writeErr, readErr     error
	stateLock             sync.Mutex

	recvBuf segmentedBuffer

	recvNotifyCh chan struct{}
	sendNotifyCh chan struct{}

	readDeadline, writeDeadline pipeDeadline

	// Fork: delivery from the receive loop (see SetDeliver). deliverMu
	// orders the receive loop's delivery against the reader leaving its
	// wait: while readerParked, the reader holds no data of its own.
	deliverMu    sync.Mutex
	deliver      func([]byte) int
	deliverMax   uint32
	readerParked bool
	windowDue    bool

	// Fork: lazy open (lazy.go). Both are set before the stream is
	// shared. lazySYN: opened with WithLazySYN, its SYN rides on its first
	// frame; synMu orders its frames until that one is out (synOut).
	// lazyACK: its SYN arrived on a data frame, its ACK rides on its
	// first frame.
	lazySYN, lazyACK bool
	synMu            sync.Mutex
	synOut           atomic.Bool
}

// newStream is used to construct a new stream within a given session for an ID.
// It assumes that a memory allocation has been obtained for the initialWindow.
func newStream(session *Session, id uint32, state streamState, initialWindow uint32, memorySpan MemoryManager) *Stream {
	s := &Stream{
		id:            id,
		session:       session,
		state:         state,
		sendWindow:    initialStreamWindow,
		readDeadline:  makePipeDeadline(),
		writeDeadline: makePipeDeadline(),
		memorySpan:    memorySpan,
		// Initialize the recvBuf with initialStreamWindow, not config.InitialStreamWindowSize.
		// The peer isn't allowed to send more data than initialStreamWindow until we've sent
		// the first window update (which will grant it up to config.InitialStreamWindowSize).
		recvBuf:      newSegmentedBuffer(initialWindow),
		recvWindow:   session.config.InitialStreamWindowSize,
		epochStart:   time.Now(),
		recvNotifyCh: make(chan struct{}, 1),
		sendNotifyCh: make(chan struct{}, 1),
	}
	return s
}

// Session returns the associated stream session
func (s *Stream) Session() *Session {
	return s.session
}

// StreamID returns the ID of this stream
func (s *Stream) StreamID() uint32 {
	return s.id
}

// Read is used to read from the stream
func (s *Stream) Read(b []byte) (n int, err error) {
START:
	s.stateLock.Lock()
	state := s.readState
	resetErr := s.readErr
	s.stateLock.Unlock()

	switch state {
	case halfOpen:
		// Open -> read
	case halfClosed:
		empty := s.recvBuf.Len() == 0
		if empty {
			return 0, io.EOF
		}
		// Closed, but we have data pending -> read.
	case halfReset:
		return 0, resetErr
	default:
		panic("unknown state")
	}

	// If there is no data available, block
	if s.recvBuf.Len() == 0 {
		s.deliverMu.Lock()
		s.readerParked = s.recvBuf.Len() == 0
		s.deliverMu.Unlock()
		var timedOut bool
		select {
		case <-s.recvNotifyCh:
		case <-s.readDeadline.wait():
			timedOut = true
		}
		s.deliverMu.Lock()
		s.readerParked = false
		windowDue := s.windowDue
		s.windowDue = false
		s.deliverMu.Unlock()
		if windowDue {
			// Data delivered by the receive loop used up half the
			// window: the update goes out from here, as after a Read.
			if err := s.sendWindowUpdateDirect(&s.readDeadline); err != nil {
				return 0, err
			}
		}
		if timedOut {
			return 0, ErrTimeout
		}
		goto START
	}

	// Read any bytes
	n, _ = s.recvBuf.Read(b)

	// Send a window update potentially
	err = s.sendWindowUpdateDirect(&s.readDeadline)
	return n, err
}

// Write is used to write to the stream
func (s *Stream) Write(b []byte) (int, error) {
	var total int
	for total < len(b) {
		n, err := s.write(b[total:])
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// write is used to write to the stream, may return on
// a short write.
func (s *Stream) write(b []byte) (n int, err error) {
	var flags uint16
	var max uint32
	var hdr header

START:
	s.stateLock.Lock()
	state := s.writeState
	resetErr := s.writeErr
	s.stateLock.Unlock()

	switch state {
	case halfOpen:
		// Open for writing -> write
	case halfClosed:
		return 0, ErrStreamClosed
	case halfReset:
		return 0, resetErr
	default:
		panic("unknown state")
	}

	// If there is no data available, block
	window := atomic.LoadUint32(&s.sendWindow)
	if window == 0 {
		select {
		case <-s.sendNotifyCh:
			goto START
		case <-s.writeDeadline.wait():
			return 0, ErrTimeout
		}
	}

	// Determine the flags if any
	first := s.lockFirstFrame()
	flags = s.sendFlags()

	// Send up to min(message, window
	max = min(window, s.session.config.MaxMessageSize-headerSize, uint32(len(b)))

	// Send the header
	hdr = encode(typeData, flags, s.id, max)
	err = s.session.sendDirect(hdr, b[:max], &s.writeDeadline)
	s.unlockFirstFrame(first, flags, err)
	if err != nil {
		return 0, err
	}

	// Reduce our send window
	atomic.AddUint32(&s.sendWindow, ^uint32(max-1))

	// Unlock
	return int(max), err
}

// sendFlags determines any flags that are appropriate
// based on the current stream state
func (s *Stream) sendFlags() uint16 {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	return s.sendFlagsLocked()
}

// sendFlagsLocked is sendFlags with stateLock held.
func (s *Stream) sendFlagsLocked() uint16 {
	var flags uint16
	switch s.state {
	case streamInit:
		flags |= flagSYN
		s.state = streamSYNSent
	case streamSYNReceived:
		flags |= flagACK
		s.state = streamEstablished
	}
	return flags
}

// sendWindowUpdate potentially sends a window update enabling
// further writes to take place. Must be invoked with the lock.
func (s *Stream) sendWindowUpdate(deadline <-chan struct{}) error {
	hdr, needed := s.windowUpdate()
	if !needed {
		return nil
	}
	return s.session.sendMsg(hdr, nil, deadline, true)
}

// sendWindowUpdateNow is sendWindowUpdate for OpenStream's SYN and
// AcceptStream's ACK (fork): the frame goes out from the caller when
// nothing is queued and nobody is writing (Session.sendNow), not through a
// wake-up of the send loop; a new stream has two of them. done and
// deadline are the caller's context's: once done is closed, or with a
// deadline nearer than the connection's write timeout (a direct write may
// block that long), the frame is queued as upstream does, so the context
// still bounds the wait.
func (s *Stream) sendWindowUpdateNow(done <-chan struct{}, deadline time.Time) (err error) {
	first := s.lockFirstFrame()
	hdr, needed := s.windowUpdate()
	defer func() { s.unlockFirstFrame(first, hdr.Flags(), err) }()
	if !needed {
		return nil
	}
	if isClosedChan(done) || (!deadline.IsZero() && !deadline.After(time.Now().Add(s.session.config.ConnectionWriteTimeout))) {
		return s.session.sendMsg(hdr, nil, done, true)
	}
	return s.session.sendNow(hdr, nil, done)
}

// sendWindowUpdateDirect is sendWindowUpdate for the reader: the update may
// go out from the reading goroutine itself (fork: Session.sendDirect).
func (s *Stream) sendWindowUpdateDirect(deadline *pipeDeadline) (err error) {
	first := s.lockFirstFrame()
	hdr, needed := s.windowUpdate()
	defer func() { s.unlockFirstFrame(first, hdr.Flags(), err) }()
	if !needed {
		return nil
	}
	return s.session.sendDirect(hdr, nil, deadline)
}

// windowUpdate grows the receive window and returns the update to send, if
// one is needed.
func (s *Stream) windowUpdate() (header, bool) {
	// Determine the flags if any
	flags := s.sendFlags()

	// Update the receive window.
	needed, delta := s.recvBuf.GrowTo(s.recvWindow, flags != 0)
	if !needed {
		return header{}, false
	}

	now := time.Now()
	if rtt := s.session.RTT(); flags == 0 && rtt > 0 && now.Sub(s.epochStart) < rtt*4 {
		var recvWindow uint32
		if s.recvWindow > math.MaxUint32/2 {
			recvWindow = min(math.MaxUint32, s.session.config.MaxStreamWindowSize)
		} else {
			recvWindow = min(s.recvWindow*2, s.session.config.MaxStreamWindowSize)
		}
		if recvWindow > s.recvWindow {
			grow := recvWindow - s.recvWindow
			if err := s.memorySpan.ReserveMemory(int(grow), 128); err == nil {
				// Under deliverMu: the receive loop reads it in tryDeliver.
				s.deliverMu.Lock()
				s.recvWindow = recvWindow
				s.deliverMu.Unlock()
				_, delta = s.recvBuf.GrowTo(s.recvWindow, true)
			}
		}
	}

	s.epochStart = now
	return encode(typeWindowUpdate, flags, s.id, delta), true
}

// sendClose is used to send a FIN, with the flags CloseWrite took (fork:
// from the closing goroutine when nothing is queued and nobody is writing,
// see Session.sendNow; only a stream's user closes it, never the receive
// loop).
func (s *Stream) sendClose(flags uint16) error {
	flags |= flagFIN
	hdr := encode(typeWindowUpdate, flags, s.id, 0)
	return s.session.sendNow(hdr, nil, nil)
}

// sendReset is used to send a RST
func (s *Stream) sendReset(errCode uint32) error {
	hdr := encode(typeWindowUpdate, flagRST, s.id, errCode)
	return s.session.sendMsg(hdr, nil, nil, true)
}

// Reset resets the stream (forcibly closes the stream)
func (s *Stream) Reset() error {
	return s.ResetWithError(0)
}

func (s *Stream) ResetWithError(errCode uint32) error {
	sendReset := false
	// Fork: a lazy stream's RST must not overtake its SYN (lazy.go).
	first := s.lockFirstFrame()
	defer s.unlockFirstFrame(first, 0, nil)
	s.stateLock.Lock()
	switch s.state {
	case streamFinished:
		s.stateLock.Unlock()
		return nil
	case streamInit:
		// we haven't sent anything, so we don't need to send a reset
		// (fork: nor has a lazy stream that sent no frame yet).
	case streamSYNSent, streamSYNReceived, streamEstablished:
		sendReset = true
	default:
		panic("unhandled state")
	}

	// at least one direction is open, we need to reset.

	// If we've already sent/received an EOF, no need to reset that side.
	if s.writeState == halfOpen {
		s.writeState = halfReset
		s.writeErr = &StreamError{Remote: false, ErrorCode: errCode}
	}
	if s.readState == halfOpen {
		s.readState = halfReset
		s.readErr = &StreamError{Remote: false, ErrorCode: errCode}
	}
	s.state = streamFinished
	s.notifyWaiting()
	s.stateLock.Unlock()
	if sendReset {
		_ = s.sendReset(errCode)
	}
	s.cleanup()
	return nil
}

// CloseWrite is used to close the stream for writing.
func (s *Stream) CloseWrite() (err error) {
	// Fork: a lazy stream's FIN must not overtake its SYN (lazy.go).
	first := s.lockFirstFrame()
	var flags uint16
	defer func() { s.unlockFirstFrame(first, flags, err) }()
	s.stateLock.Lock()
	switch s.writeState {
	case halfOpen:
		// Open for writing -> close write
	case halfClosed:
		s.stateLock.Unlock()
		return nil
	case halfReset:
		s.stateLock.Unlock()
		return s.writeErr
	default:
		panic("invalid state")
	}
	s.writeState = halfClosed
	cleanup := s.readState != halfOpen
	// Fork: taken before the state ends, so a SYN or an ACK not sent yet
	// (a lazy stream's, lazy.go) rides on the FIN: an acceptor that
	// closes without writing frees the opener's in-flight SYN slot.
	flags = s.sendFlagsLocked()
	if cleanup {
		s.state = streamFinished
	}
	s.stateLock.Unlock()
	s.notifyWaiting()

	if cleanup && flags&flagSYN != 0 {
		// A lazy stream closed before any frame: the peer never knew
		// of it, so there is nothing to close there (as Reset).
		s.cleanup()
		return nil
	}
	err = s.sendClose(flags)
	if cleanup {
		// we're fully closed, might as well be nice to the user and
		// free everything early.
		s.cleanup()
	}
	return err
}

// CloseRead is used to close the stream for reading.
// Note: Remote is not notified.
func (s *Stream) CloseRead() error {
	cleanup := false
	s.stateLock.Lock()
	switch s.readState {
	case halfOpen:
		// Open for reading -> close read
	case halfClosed, halfReset:
		s.stateLock.Unlock()
		return nil
	default:
		panic("invalid state")
	}
	s.readState = halfReset
	s.readErr = ErrStreamReset
	cleanup = s.writeState != halfOpen
	if cleanup {
		s.state = streamFinished
	}
	s.stateLock.Unlock()
	s.notifyWaiting()
	if cleanup {
		// we're fully closed, might as well be nice to the user and
		// free everything early.
		s.cleanup()
	}
	return nil
}

// Close is used to close the stream.
func (s *Stream) Close() error {
	_ = s.CloseRead() // can't fail.
	return s.CloseWrite()
}

// forceClose is used for when the session is exiting
func (s *Stream) forceClose(err error) {
	s.stateLock.Lock()
	if s.readState == halfOpen {
		s.readState = halfReset
		s.readErr = err
	}
	if s.writeState == halfOpen {
		s.writeState = halfReset
		s.writeErr = err
	}
	s.state = streamFinished
	s.notifyWaiting()
	s.stateLock.Unlock()

	s.readDeadline.set(time.Time{})
	s.writeDeadline.set(time.Time{})
}

// called when fully closed to release any system resources.
func (s *Stream) cleanup() {
	s.session.closeStream(s.id)
	s.readDeadline.set(time.Time{})
	s.writeDeadline.set(time.Time{})
}

// processFlags is used to update the state of the stream
// based on set flags, if any. Lock must be held
func (s *Stream) processFlags(hdr header, flags uint16) {
	// Close the stream without holding the state lock
	var closeStream bool
	defer func() {
		if closeStream {
			s.cleanup()
		}
	}()

	if flags&flagACK == flagACK {
		s.stateLock.Lock()
		if s.state == streamSYNSent {
			s.state = streamEstablished
		}
		s.stateLock.Unlock()
		s.session.establishStream(s.id)
	}
	if flags&flagFIN == flagFIN {
		var notify bool
		s.stateLock.Lock()
		if s.readState == halfOpen {
			s.readState = halfClosed
			if s.writeState != halfOpen {
				// We're now fully closed.
				closeStream = true
				s.state = streamFinished
			}
			notify = true
		}
		s.stateLock.Unlock()
		if notify {
			s.notifyWaiting()
		}
	}
	if flags&flagRST == flagRST {
		s.stateLock.Lock()
		var resetErr error = ErrStreamReset
		// Length in a window update frame with RST flag encodes an error code.
		if hdr.MsgType() == typeWindowUpdate {
			resetErr = &StreamError{Remote: true, ErrorCode: hdr.Length()}
		}
		if s.readState == halfOpen {
			s.readState = halfReset
			s.readErr = resetErr
		}
		if s.writeState == halfOpen {
			s.writeState = halfReset
			s.writeErr = resetErr
		}
		s.state = streamFinished
		s.stateLock.Unlock()
		closeStream = true
		s.notifyWaiting()
	}
}

// notifyWaiting notifies all the waiting channels
func (s *Stream) notifyWaiting() {
	asyncNotify(s.recvNotifyCh)
	asyncNotify(s.sendNotifyCh)
}

// incrSendWindow updates the size of our send window
func (s *Stream) incrSendWindow(hdr header, flags uint16) {
	s.processFlags(hdr, flags)
	// Increase window, unblock a sender
	atomic.AddUint32(&s.sendWindow, hdr.Length())
	asyncNotify(s.sendNotifyCh)
}

// readData is used to handle a data frame
func (s *Stream) readData(hdr header, flags uint16, conn io.Reader) error {
	s.processFlags(hdr, flags)

	// Check that our recv window is not exceeded
	length := hdr.Length()
	if length == 0 {
		return nil
	}

	if delivered, err := s.tryDeliver(conn, length); delivered {
		if err != nil {
			s.session.logger.Printf("[ERR] yamux: Failed to read stream data on stream %d: %v", s.id, err)
		}
		return err
	}

	// Copy into buffer
	if err := s.recvBuf.Append(conn, length); err != nil {
		s.session.logger.Printf("[ERR] yamux: Failed to read stream data on stream %d: %v", s.id, err)
		return err
	}
	// Unblock the reader
	asyncNotify(s.recvNotifyCh)
	return nil
}

// Intact reports whether neither side has closed or reset the stream, nor
// has its session ended: a stream opened ahead of its use and still intact
// can carry the exchange it was opened for. (Fork: fungi keeps access
// streams opened ahead and must not hand out one the peer already ended.)
func (s *Stream) Intact() bool {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	return s.readState == halfOpen && s.writeState == halfOpen
}

// SetDeliver lets the session's receive loop hand this stream's data
// frames to deliver, in pieces of up to max bytes, instead of queueing them
// for Read, whenever the stream's reader is waiting in Read with nothing
// buffered: the data then reaches its destination without waking the
// reader. deliver must not block (a non-blocking write, say) and returns
// how many bytes it took; the rest of the piece and of its frame are
// buffered for Read as usual, in order. Bytes deliver took count as read.
// A nil deliver turns delivery off. Only the reader's own destination may
// be written by deliver: while the reader is waiting it holds no data, so
// nothing it wrote can be overtaken.
func (s *Stream) SetDeliver(max uint32, deliver func([]byte) int) {
	s.deliverMu.Lock()
	s.deliver = deliver
	s.deliverMax = max
	s.deliverMu.Unlock()
}

// deliverableLocked reports whether the receive loop may hand bytes to
// deliver now: the reader waits in Read with nothing buffered and the
// stream is open for reading. The caller holds deliverMu.
func (s *Stream) deliverableLocked() bool {
	if s.deliver == nil || s.deliverMax == 0 || !s.readerParked || s.recvBuf.Len() != 0 {
		return false
	}
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	return s.readState == halfOpen
}

// tryDeliver reads a data frame of length bytes from conn and hands it, a
// piece at a time, to the stream's deliver function while the reader waits
// on an empty buffer; whatever deliver does not take, and the rest of the
// frame, is buffered. It reports false, having read nothing, when the frame
// must go through the buffer. deliverMu is not held while a piece is read
// from conn: a frame may arrive slowly, and a reader whose deadline passes
// meanwhile must be able to leave its wait (it then gets the rest of the
// frame from the buffer).
func (s *Stream) tryDeliver(conn io.Reader, length uint32) (bool, error) {
	s.deliverMu.Lock()
	piece := s.deliverMax
	ok := s.deliverableLocked()
	s.deliverMu.Unlock()
	if !ok || s.recvBuf.checkOverflow(length) != nil {
		return false, nil
	}
	if piece > length {
		piece = length
	}
	buf := pool.Get(int(piece))
	defer pool.Put(buf)
	for left := length; left > 0; {
		m := piece
		if m > left {
			m = left
		}
		if _, err := io.ReadFull(conn, buf[:m]); err != nil {
			// The session is ending: the reader learns it from the
			// stream's close, as when Append fails.
			return true, nil
		}
		left -= m
		n := 0
		s.deliverMu.Lock()
		if s.deliverableLocked() {
			n = s.deliver(buf[:m])
			s.recvBuf.consume(uint32(n))
		}
		s.deliverMu.Unlock()
		if n < int(m) {
			s.recvBuf.Append(bytes.NewReader(buf[n:m]), m-uint32(n))
			var err error
			if left > 0 {
				err = s.recvBuf.Append(conn, left)
			}
			asyncNotify(s.recvNotifyCh)
			return true, err
		}
	}
	s.deliverMu.Lock()
	if s.recvBuf.windowLow(s.recvWindow) {
		s.windowDue = true
		asyncNotify(s.recvNotifyCh)
	}
	s.deliverMu.Unlock()
	return true, nil
}

// SetDeadline sets the read and write deadlines
func (s *Stream) SetDeadline(t time.Time) error {
	if err := s.SetReadDeadline(t); err != nil {
		return err
	}
	if err := s.SetWriteDeadline(t); err != nil {
		return err
	}
	return nil
}

// SetReadDeadline sets the deadline for future Read calls.
func (s *Stream) SetReadDeadline(t time.Time) error {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	if s.readState == halfOpen {
		s.readDeadline.set(t)
	}
	return nil
}

// SetWriteDeadline sets the deadline for future Write calls
func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.stateLock.Lock()
	defer s.stateLock.Unlock()
	if s.writeState == halfOpen {
		s.writeDeadline.set(t)
	}
	return nil
}
