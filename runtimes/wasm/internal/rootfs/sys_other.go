//go:build !linux

package rootfs

import (
	"io"
	"os"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// Off Linux the flags os has no constant for are dropped, and the calls
// below that need a descriptor-based system call are not supported.

func withSyscallFlags(_ experimentalsys.Oflag, flag int) int { return flag }

func setAppend(*os.File, bool) experimentalsys.Errno { return experimentalsys.ENOSYS }

func datasync(f *os.File) experimentalsys.Errno { return Errno(f.Sync()) }

func pwrite(f *os.File, buf []byte, off int64) (int, experimentalsys.Errno) {
	n, err := f.WriteAt(buf, off)
	return n, Errno(err)
}

func futimens(*os.File, int64, int64) experimentalsys.Errno { return experimentalsys.ENOSYS }

// dirStream is unused off Linux: entries come from os.File.ReadDir, whose
// types come from the directory itself.
type dirStream struct{}

func (f *file) rewindDir() experimentalsys.Errno {
	if _, err := f.f.Seek(0, io.SeekStart); err != nil {
		return f.ioErrno(err)
	}
	return 0
}

func (f *file) readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	entries, err := f.f.ReadDir(n)
	if err != nil && err != io.EOF {
		return nil, f.ioErrno(err)
	}
	out := make([]experimentalsys.Dirent, 0, len(entries))
	for _, e := range entries {
		out = append(out, experimentalsys.Dirent{Name: e.Name(), Type: e.Type()})
	}
	return out, 0
}
