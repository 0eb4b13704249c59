package daemon

import (
	"io"
	"os"
	"strconv"
	"strings"
)

// maxPIDText bounds what is read of the lock file: a PID and a newline.
const maxPIDText = 32

// writePID replaces the lock file's text with this process's PID.
func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// readPID is the PID in the lock file, 0 when it holds none (a daemon
// from before PIDs were written, or one still starting).
func readPID(f *os.File) int {
	b, err := io.ReadAll(io.LimitReader(io.NewSectionReader(f, 0, maxPIDText), maxPIDText))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
