package logging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// maxTailLines bounds --tail: the lines kept in memory while reading back.
const maxTailLines = 100000

// Tail writes the last n lines of the log at path to w (every line when n
// is negative), reading the file from its end in blocks, so a large log
// costs only the lines asked for. It returns the offset it read up to,
// where Follow goes on.
func Tail(path string, n int, w io.Writer) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("no daemon log at %s yet: it starts with the daemon (`fungi daemon`)", path)
		}
		return 0, err
	}
	defer f.Close()
	if n > maxTailLines {
		n = maxTailLines
	}
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := info.Size()
	var start int64
	if n >= 0 {
		if start, err = tailOffset(f, size, n); err != nil {
			return 0, err
		}
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return 0, err
	}
	_, err = io.Copy(w, io.LimitReader(f, size-start))
	return size, err
}

// tailOffset is where the last n lines of a file of size bytes begin.
func tailOffset(f io.ReaderAt, size int64, n int) (int64, error) {
	if n == 0 {
		return size, nil
	}
	const block = 64 << 10
	buf := make([]byte, block)
	end := size
	// A final newline ends the last line; it does not start another.
	if size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil {
			return 0, err
		}
		if last[0] == '\n' {
			end = size - 1
		}
	}
	seen := 0
	for pos := end; pos > 0; {
		k := int64(block)
		if pos < k {
			k = pos
		}
		pos -= k
		if _, err := f.ReadAt(buf[:k], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := k - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				seen++
				if seen == n {
					return pos + i + 1, nil
				}
			}
		}
	}
	return 0, nil
}

// Follow writes what is appended to the log at path from offset on until
// ctx ends, reopening the file when it is rotated.
func Follow(ctx context.Context, path string, offset int64, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		// Rotated: the path is a new, shorter file; read it from its start.
		if cur, err := os.Stat(path); err == nil {
			if old, err := f.Stat(); err == nil && !os.SameFile(cur, old) {
				if nf, err := os.Open(path); err == nil {
					io.Copy(w, f)
					f.Close()
					f = nf
					continue
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
