package actors

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// serviceLog is a service's log file. The instance writes the guest's
// output to it from request goroutines, hence the lock. It keeps at most
// two files of maxLogBytes each (service.log and service.log.1), so a
// chatty service on an always-on node cannot fill the disk.
type serviceLog struct {
	mu   sync.Mutex
	path string
	f    *os.File
	size int64
	max  int64
	// held says the instance's output waits in pending (and, past
	// maxHeldBytes, its writer waits on released) until the service has
	// logged that it runs.
	held     bool
	pending  []byte
	released *sync.Cond
}

const (
	maxLogBytes  = 16 << 20
	maxHeldBytes = 1 << 20
)

func openServiceLog(path string) *serviceLog {
	l := &serviceLog{path: path, max: maxLogBytes}
	l.released = sync.NewCond(&l.mu)
	l.open()
	return l
}

// hold keeps the instance's output back from now until release.
func (l *serviceLog) hold() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = true
}

// release writes what the instance wrote while held, after the lines the
// service logged meanwhile, and lets its writers go on.
func (l *serviceLog) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held {
		return
	}
	l.held = false
	if len(l.pending) > 0 {
		l.write(l.pending)
		l.pending = nil
	}
	l.released.Broadcast()
}

// guestLog is the writer an instance gets: its output waits while the log
// is held.
type guestLog struct{ l *serviceLog }

func (g guestLog) Write(b []byte) (int, error) {
	l := g.l
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.held && len(l.pending)+len(b) > maxHeldBytes {
		l.released.Wait()
	}
	if l.held {
		l.pending = append(l.pending, b...)
		return len(b), nil
	}
	return l.write(b)
}

func (l *serviceLog) open() {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	l.f = f
	if info, err := f.Stat(); err == nil {
		l.size = info.Size()
	}
}

func (l *serviceLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.write(b)
}

// write appends b to the file, rolling it over past max; l.mu is held.
func (l *serviceLog) write(b []byte) (int, error) {
	if l.f == nil {
		return len(b), nil
	}
	if l.size+int64(len(b)) > l.max && l.size > 0 {
		l.f.Close()
		os.Rename(l.path, l.path+".1")
		l.f, l.size = nil, 0
		l.open()
		if l.f == nil {
			return len(b), nil
		}
	}
	n, err := l.f.Write(b)
	l.size += int64(n)
	return n, err
}

func (l *serviceLog) printf(format string, args ...any) {
	fmt.Fprintf(l, "%s fungi: %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

func (l *serviceLog) Close() error {
	l.release()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
