package transport

import (
	"context"
	"io"
)

// SendProgress is told how much of a request has gone out to the peer.
type SendProgress func(sent, total int64)

type sendProgressKey struct{}

// WithSendProgress has CallControl report, on ctx, how much of its request
// the peer has taken: shipping a module to a peer can take a while, and
// the user should see it move.
func WithSendProgress(ctx context.Context, report SendProgress) context.Context {
	return context.WithValue(ctx, sendProgressKey{}, report)
}

// sendProgressChunk is how much goes out between two reports.
const sendProgressChunk = 256 << 10

// progressWriter writes in chunks and reports after each one.
type progressWriter struct {
	w      io.Writer
	report SendProgress
	sent   int64
}

func (p *progressWriter) Write(b []byte) (int, error) {
	total := int64(len(b))
	written := 0
	for written < len(b) {
		end := min(written+sendProgressChunk, len(b))
		n, err := p.w.Write(b[written:end])
		written += n
		p.sent += int64(n)
		if err != nil {
			return written, err
		}
		p.report(p.sent, total)
	}
	return written, nil
}

// requestWriter is w, reporting progress when ctx asks for it.
func requestWriter(ctx context.Context, w io.Writer) io.Writer {
	if report, ok := ctx.Value(sendProgressKey{}).(SendProgress); ok && report != nil {
		return &progressWriter{w: w, report: report}
	}
	return w
}
