package rootfs

import (
	"io"
	"io/fs"
	"os"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// file is an experimentalsys.File over an *os.File opened through the Root.
// Every operation works on the descriptor, never on a path, so nothing done
// through an open file can be redirected by a rename or symlink on the host.
type file struct {
	f      *os.File
	append bool
	closed bool
	// readOnly is the FS's: a change through the descriptor is EROFS.
	readOnly bool

	// statted, dev, ino and isDir do not change while the file is open.
	statted bool
	dev     uint64
	ino     sys.Inode
	isDir   bool

	// dir is the directory stream's read state (see readdir_*.go).
	dir dirStream
}

var _ experimentalsys.File = (*file)(nil)

func newFile(f *os.File, flag experimentalsys.Oflag) *file {
	return &file{f: f, append: flag&experimentalsys.O_APPEND != 0}
}

// toOSFlag maps wazero's open flags to os.OpenFile's; the flags without a
// portable os constant are added by withSyscallFlags.
func toOSFlag(oflag experimentalsys.Oflag) int {
	var flag int
	switch oflag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY) {
	case experimentalsys.O_RDWR:
		flag = os.O_RDWR
	case experimentalsys.O_WRONLY:
		flag = os.O_WRONLY
	default:
		flag = os.O_RDONLY
	}
	if oflag&experimentalsys.O_APPEND != 0 {
		flag |= os.O_APPEND
	}
	if oflag&experimentalsys.O_CREAT != 0 {
		flag |= os.O_CREATE
	}
	if oflag&experimentalsys.O_EXCL != 0 {
		flag |= os.O_EXCL
	}
	if oflag&experimentalsys.O_SYNC != 0 {
		flag |= os.O_SYNC
	}
	if oflag&experimentalsys.O_TRUNC != 0 {
		flag |= os.O_TRUNC
	}
	return withSyscallFlags(oflag, flag)
}

func (f *file) cachedStat() experimentalsys.Errno {
	if f.statted {
		return 0
	}
	_, errno := f.Stat()
	return errno
}

// Dev implements experimentalsys.File.
func (f *file) Dev() (uint64, experimentalsys.Errno) {
	errno := f.cachedStat()
	return f.dev, errno
}

// Ino implements experimentalsys.File.
func (f *file) Ino() (sys.Inode, experimentalsys.Errno) {
	errno := f.cachedStat()
	return f.ino, errno
}

// IsDir implements experimentalsys.File.
func (f *file) IsDir() (bool, experimentalsys.Errno) {
	errno := f.cachedStat()
	return f.isDir, errno
}

// IsAppend implements experimentalsys.File.
func (f *file) IsAppend() bool { return f.append }

// SetAppend implements experimentalsys.File. The flag is changed on the open
// descriptor: reopening by path, as wazero's own file does, would resolve
// the path again outside the Root.
func (f *file) SetAppend(enable bool) experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	if f.readOnly && enable {
		return experimentalsys.EROFS
	}
	if isDir, errno := f.IsDir(); errno != 0 {
		return errno
	} else if isDir {
		return experimentalsys.EISDIR
	}
	if errno := setAppend(f.f, enable); errno != 0 {
		return errno
	}
	f.append = enable
	return 0
}

// Stat implements experimentalsys.File.
func (f *file) Stat() (sys.Stat_t, experimentalsys.Errno) {
	if f.closed {
		return sys.Stat_t{}, experimentalsys.EBADF
	}
	fi, err := f.f.Stat()
	if err != nil {
		return sys.Stat_t{}, Errno(err)
	}
	st := sys.NewStat_t(fi)
	f.statted, f.dev, f.ino, f.isDir = true, st.Dev, st.Ino, st.Mode&fs.ModeDir != 0
	return st, 0
}

// Read implements experimentalsys.File.
func (f *file) Read(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.Read(buf)
	return n, f.ioErrno(err)
}

// Pread implements experimentalsys.File.
func (f *file) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.ReadAt(buf, off)
	return n, f.ioErrno(err)
}

// fileOffset is int64 under another name so that go vet's check for io.Seeker
// look-alikes passes over Seek, whose Errno result wazero's interface fixes.
type fileOffset = int64

// Seek implements experimentalsys.File. On a directory only a rewind is
// meaningful: it makes the next Readdir start over and see new entries.
func (f *file) Seek(offset fileOffset, whence int) (int64, experimentalsys.Errno) {
	if f.closed {
		return 0, experimentalsys.EBADF
	}
	if uint(whence) > io.SeekEnd {
		return 0, experimentalsys.EINVAL
	}
	if isDir, errno := f.IsDir(); errno != 0 {
		return 0, errno
	} else if isDir {
		if offset != 0 || whence != io.SeekStart {
			return 0, experimentalsys.EISDIR
		}
		return 0, f.rewindDir()
	}
	n, err := f.f.Seek(offset, whence)
	return n, f.ioErrno(err)
}

// Readdir implements experimentalsys.File: up to n entries, fewer at the end
// of the directory, never "." or "..".
func (f *file) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	if f.closed {
		return nil, experimentalsys.EBADF
	}
	if isDir, errno := f.IsDir(); errno != 0 {
		return nil, errno
	} else if !isDir {
		return nil, experimentalsys.EBADF
	}
	return f.readdir(n)
}

// Write implements experimentalsys.File.
func (f *file) Write(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.Write(buf)
	return n, f.ioErrno(err)
}

// Pwrite implements experimentalsys.File. It is pwrite(2) on the
// descriptor: os.File.WriteAt refuses a file opened with O_APPEND, which
// WASI allows (Linux then writes at the end, as wasi-testsuite's
// pwrite-with-append accepts).
func (f *file) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	if f.closed {
		return 0, experimentalsys.EBADF
	}
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	return pwrite(f.f, buf, off)
}

// Truncate implements experimentalsys.File.
func (f *file) Truncate(size int64) experimentalsys.Errno {
	if size < 0 {
		return experimentalsys.EINVAL
	}
	return f.ioErrno(f.f.Truncate(size))
}

// Sync implements experimentalsys.File.
func (f *file) Sync() experimentalsys.Errno {
	return f.ioErrno(f.f.Sync())
}

// Datasync implements experimentalsys.File.
func (f *file) Datasync() experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	return datasync(f.f)
}

// Utimens implements experimentalsys.File.
func (f *file) Utimens(atim, mtim int64) experimentalsys.Errno {
	if f.closed {
		return experimentalsys.EBADF
	}
	if f.readOnly {
		return experimentalsys.EROFS
	}
	if atim == experimentalsys.UTIME_OMIT && mtim == experimentalsys.UTIME_OMIT {
		return 0
	}
	return futimens(f.f, atim, mtim)
}

// Close implements experimentalsys.File.
func (f *file) Close() experimentalsys.Errno {
	if f.closed {
		return 0
	}
	f.closed = true
	return Errno(f.f.Close())
}

// ioErrno maps an I/O error the way the guest expects: end of file is not an
// error, and a closed file is EBADF.
func (f *file) ioErrno(err error) experimentalsys.Errno {
	if err == nil || err == io.EOF {
		return 0
	}
	if f.closed {
		return experimentalsys.EBADF
	}
	return Errno(err)
}
