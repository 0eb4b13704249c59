package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"google.golang.org/protobuf/proto"

	"github.com/fungi-go/fungi/messages"
)

// A frame that announces far more than it carries costs what arrived, not
// what it announced.
func TestReadFrameAllocatesWhatArrives(t *testing.T) {
	announced := 60 << 20
	frame := append(binary.AppendUvarint(nil, uint64(announced)), bytes.Repeat([]byte{0x0a}, 100)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var e messages.Envelope
	err := ReadFrame(bufio.NewReader(bytes.NewReader(frame)), &e, MaxControlFrame)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Fatalf("a frame cut short was read: %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
		t.Fatalf("reading 100 bytes of a frame announcing %d allocated %d bytes", announced, got)
	}
}

// A whole frame larger than one growth step still arrives intact.
func TestReadFrameLargeRoundTrip(t *testing.T) {
	art := bytes.Repeat([]byte("module"), 1<<20)
	var buf bytes.Buffer
	WriteFrame(&buf, &messages.Envelope{Body: &messages.Envelope_Pull{Pull: &messages.PullServiceRequest{Artifact: art}}})
	var e messages.Envelope
	if err := ReadFrame(bufio.NewReader(&buf), &e, MaxControlFrame); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.GetPull().GetArtifact(), art) {
		t.Fatal("the artifact changed on the way")
	}
}

func TestReadFrameLimits(t *testing.T) {
	var buf bytes.Buffer
	WriteFrame(&buf, &messages.AccessHeader{ServiceId: strings.Repeat("x", 100)})
	var h messages.AccessHeader
	if err := ReadFrame(bufio.NewReader(bytes.NewReader(buf.Bytes())), &h, 50); err == nil || !strings.Contains(err.Error(), "frame too large") {
		t.Fatalf("limit not enforced: %v", err)
	}
	if err := ReadFrame(bufio.NewReader(bytes.NewReader(buf.Bytes())), &h, 200); err != nil || len(h.ServiceId) != 100 {
		t.Fatalf("round trip: %v", err)
	}
}

// FuzzReadFrame: whatever arrives, in whatever pieces, the incremental
// decoder agrees with a plain one (read the length, then the announced
// bytes at once): the same messages, an error where it errs, a too-large
// error exactly when the length passes the role's limit; never a panic.
//
//	go test -run '^$' -fuzz FuzzReadFrame -fuzztime 10s ./transport/wire
func FuzzReadFrame(f *testing.F) {
	var good bytes.Buffer
	WriteFrame(&good, &messages.Envelope{RequestId: 1, Body: &messages.Envelope_Start{Start: &messages.StartService{Name: "svc"}}})
	f.Add(good.Bytes(), uint8(0), false)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, uint8(1), true)
	f.Add([]byte{0x05, 0x0a, 0x03}, uint8(2), false)
	f.Add([]byte{}, uint8(0), true)
	f.Add(append(binary.AppendUvarint(nil, MaxAccessRoleControlFrame+1), 0x0a), uint8(3), false)
	f.Fuzz(func(t *testing.T, data []byte, pieces uint8, admin bool) {
		role := "access"
		if admin {
			role = "admin"
		}
		limit := ControlFrameLimit(role)
		var src io.Reader = bytes.NewReader(data)
		switch pieces % 3 {
		case 1:
			src = iotest.OneByteReader(src)
		case 2:
			src = iotest.HalfReader(src)
		}
		r := bufio.NewReaderSize(src, 16)
		ref := bytes.NewReader(data)
		for i := 0; i < 4; i++ {
			var got, want messages.Envelope
			err := ReadFrame(r, &got, limit)
			wantErr, tooLarge := plainReadFrame(ref, &want, limit)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("frame %d: incremental %v, plain %v", i, err, wantErr)
			}
			if errors.Is(err, ErrFrameTooLarge) != tooLarge {
				t.Fatalf("frame %d: too large %v, want %v (%v)", i, errors.Is(err, ErrFrameTooLarge), tooLarge, err)
			}
			if err != nil {
				return
			}
			if !proto.Equal(&got, &want) {
				t.Fatalf("frame %d: incremental %v, plain %v", i, &got, &want)
			}
		}
	})
}

// plainReadFrame is the obvious decoder ReadFrame must agree with.
func plainReadFrame(r *bytes.Reader, m proto.Message, limit int) (err error, tooLarge bool) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return err, false
	}
	if n > uint64(limit) {
		return ErrFrameTooLarge, true
	}
	if n > uint64(r.Len()) {
		return io.ErrUnexpectedEOF, false
	}
	b := make([]byte, n)
	io.ReadFull(r, b)
	return proto.Unmarshal(b, m), false
}
