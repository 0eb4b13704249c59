// Package logging is the daemon's own log: slog text lines with timestamps,
// written to stderr and to HOME/logs/daemon.log, which is rotated at
// MaxFileSize keeping one previous file (daemon.log.1), so the log never
// fills the disk however long the node runs.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// MaxFileSize is the size at which daemon.log is rotated.
const MaxFileSize = 16 << 20

// FileName is the log file's name in the logs folder.
const FileName = "daemon.log"

// Path is the daemon log of the node folder dir.
func Path(dir string) string { return filepath.Join(dir, "logs", FileName) }

// ParseLevel reads a level name: debug, info, warn or error ("" is info).
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q is not one of debug, info, warn, error", s)
}

// Open starts the log of the node folder dir: lines at level and above go
// to stderr and to dir/logs/daemon.log. Close the returned file when the
// daemon stops.
func Open(dir string, level slog.Level, stderr io.Writer) (*slog.Logger, io.Closer, error) {
	f, err := OpenFile(Path(dir), MaxFileSize)
	if err != nil {
		return nil, nil, err
	}
	h := slog.NewTextHandler(io.MultiWriter(stderr, f), &slog.HandlerOptions{Level: level})
	return slog.New(h), f, nil
}

// RotatingFile is an append-only log file that, before a write would take it
// past its limit, is renamed to NAME.1 (replacing the previous one) and
// started again. Safe for concurrent writers.
type RotatingFile struct {
	mu    sync.Mutex
	path  string
	limit int64
	f     *os.File
	size  int64
}

// OpenFile opens (creating it and its folder, private to the owner) the log
// file at path, rotated at limit bytes.
func OpenFile(path string, limit int64) (*RotatingFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create the log folder: %w", err)
	}
	r := &RotatingFile{path: path, limit: limit}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *RotatingFile) open() error {
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open the daemon log: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	r.f, r.size = f, info.Size()
	return nil
}

// Write appends p, rotating first when p would take the file past its
// limit. A write that fails is reported; stderr still has the line.
func (r *RotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, os.ErrClosed
	}
	if r.size > 0 && r.size+int64(len(p)) > r.limit {
		r.f.Close()
		r.f = nil
		// On Windows an open file cannot be renamed over, hence the
		// close first; the old .1 goes.
		os.Remove(r.path + ".1")
		if err := os.Rename(r.path, r.path+".1"); err != nil {
			return 0, fmt.Errorf("rotate the daemon log: %w", err)
		}
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	n, err := r.f.Write(p)
	r.size += int64(n)
	return n, err
}

// Close closes the file.
func (r *RotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
